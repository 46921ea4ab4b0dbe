"""Learning curves of a run from its stored epoch log: a terminal sparkline, or an SVG or PNG figure.

The log holds, per epoch, the phase, the model's training loss, the reconstruction loss (with the hook) and
the validation metric. A figure has two panels, validation metric and training loss against the epoch
counted across phases, with the phase boundary marked. SVG is written by hand; PNG is drawn with Pillow
(installed with RecBole's dependencies), so neither needs a plotting library.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from kt_cli.errors import UsageError

BARS = "▁▂▃▄▅▆▇█"
FORMATS = (".svg", ".png")
WIDTH, PANEL, MARGIN = 640, 200, 50


def sparkline(values: list[float], width: int = 60) -> str:
    """Values as block characters, resampled to at most ``width`` (min to max of the values)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [values[int(i * step)] for i in range(width)]
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    return "".join(BARS[min(len(BARS) - 1, int((v - low) / span * len(BARS)))]
                   if v is not None and math.isfinite(v) else " " for v in values)


def _panels(epochs: pd.DataFrame, metric: str) -> list[tuple[str, list[float]]]:
    panels = [(f"validation {metric}", epochs["valid_metric"].tolist()), ("training loss", epochs["model_loss"].tolist())]
    if epochs["recon_loss"].notna().any():
        panels.append(("reconstruction loss", epochs["recon_loss"].tolist()))
    return panels


def _points(values: list[float], top: float) -> list[tuple[float, float]]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    span = (high - low) or 1.0
    n = max(len(values) - 1, 1)
    return [(MARGIN + i / n * (WIDTH - 2 * MARGIN), top + PANEL - 20 - (v - low) / span * (PANEL - 40))
            for i, v in enumerate(values) if v is not None and math.isfinite(v)]


def write_figure(epochs: pd.DataFrame, path: Path, title: str, metric: str) -> Path:
    """Write the curves to ``path`` (.svg or .png), ``metric`` naming the validation metric; returns it."""
    if path.suffix not in FORMATS:
        raise UsageError(f"--plot takes a file ending in {' or '.join(FORMATS)}, not '{path}'.")
    panels = _panels(epochs, metric)
    boundary = int((epochs["phase"] != "finetune").sum())
    n = max(len(epochs) - 1, 1)
    split_x = MARGIN + (boundary - 0.5) / n * (WIDTH - 2 * MARGIN) if 0 < boundary < len(epochs) else None
    height = 30 + PANEL * len(panels)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".svg":
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" '
                 f'font-size="11"><text x="{MARGIN}" y="16">{title}</text>']
        for index, (name, values) in enumerate(panels):
            top = 30 + index * PANEL
            finite = [v for v in values if v is not None and math.isfinite(v)]
            parts.append(f'<text x="{MARGIN}" y="{top + 12}">{name}: {min(finite):.4g} to {max(finite):.4g}</text>')
            line = " ".join(f"{x:.1f},{y:.1f}" for x, y in _points(values, top))
            parts.append(f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{line}"/>')
            if split_x is not None:
                parts.append(f'<line x1="{split_x:.1f}" x2="{split_x:.1f}" y1="{top + 16}" y2="{top + PANEL - 16}" '
                             'stroke="#888" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{MARGIN}" y="{height - 4}">epoch (dashed: hook removed, fine-tune starts)</text></svg>')
        path.write_text("\n".join(parts), encoding="utf-8")
        return path
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (WIDTH, height + 14), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=12)
    draw.text((MARGIN, 6), title, fill="black", font=font)
    for index, (name, values) in enumerate(panels):
        top = 30 + index * PANEL
        finite = [v for v in values if v is not None and math.isfinite(v)]
        draw.text((MARGIN, top), f"{name}: {min(finite):.4g} to {max(finite):.4g}", fill="black", font=font)
        draw.line(_points(values, top), fill=(31, 119, 180), width=2)
        if split_x is not None:
            draw.line([(split_x, top + 16), (split_x, top + PANEL - 16)], fill=(136, 136, 136))
    draw.text((MARGIN, height - 2), f"epochs 1 to {len(epochs)} (grey line: hook removed, fine-tune starts)",
              fill="black", font=font)
    image.save(path)
    return path
