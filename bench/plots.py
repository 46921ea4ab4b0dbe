"""Grouped bar charts with error bars as plain SVG (no plotting library), for the benchmarks' docs."""

from __future__ import annotations

PALETTE = ("#888888", "#1f77b4", "#ff7f0e", "#d62728", "#2ca02c", "#8c564b", "#17becf", "#9467bd")


def grouped_bars(groups: dict[str, dict[str, tuple[float, float | None]]], arms: list[str], title: str, *,
                 low: float = 0.0, bar: int = 20) -> str:
    """One group of bars per key of ``groups`` (its label may hold a newline), one bar per arm present:
    ``(mean, std)``, the bar from ``low`` to the mean, the error bar one std each way."""
    colours = dict(zip(arms, PALETTE))
    left, bottom, height, gap = 50, 40, 320, 30
    width = left + len(groups) * (len(arms) * bar + gap) + 130
    high = max(mean + (std or 0) for cells in groups.values() for mean, std in cells.values())
    scale = (height - bottom - 30) / max(high - low, 1e-12)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="10">', f'<text x="{left}" y="14">{title}</text>']
    for g, (label, cells) in enumerate(groups.items()):
        x0 = left + g * (len(arms) * bar + gap)
        for line, text in enumerate(label.split("\n")):
            parts.append(f'<text x="{x0}" y="{height - 22 + 12 * line}">{text}</text>')
        for j, arm in enumerate(a for a in arms if a in cells):
            mean, std = cells[arm]
            x, h = x0 + j * bar, (mean - low) * scale
            parts.append(f'<rect x="{x}" y="{height - bottom - h:.1f}" width="{bar - 2}" height="{h:.1f}" '
                         f'fill="{colours[arm]}"/>')
            spread = (std or 0) * scale
            middle = x + bar / 2 - 1
            parts.append(f'<line x1="{middle}" x2="{middle}" y1="{height - bottom - h + spread:.1f}" '
                         f'y2="{height - bottom - h - spread:.1f}" stroke="black"/>')
    for j, arm in enumerate(arms):
        parts.append(f'<rect x="{width - 120}" y="{30 + 14 * j}" width="10" height="10" fill="{colours[arm]}"/>'
                     f'<text x="{width - 105}" y="{39 + 14 * j}">{arm}</text>')
    return "\n".join(parts + ["</svg>"])
