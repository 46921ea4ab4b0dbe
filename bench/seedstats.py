"""Arms x seeds tables for the benchmarks: mean ± std over seeds, change against a reference arm, a paired t-test
over users (each user's value averaged over seeds) and a Welch t-test over seed means, Holm over the metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from kt_cli.evaluation.compare import adjust


def _values(frame: pd.DataFrame, metric: str, item_slice: str) -> pd.Series:
    name, k = metric.split("@")
    rows = frame[(frame["slice"] == item_slice) & (frame["metric"] == name) & (frame["k"] == int(k))]
    return rows.set_index("user_id")["value"]


def table(frames: dict[str, list[pd.DataFrame]], item_slice: str, metrics: list[str],
          reference: str) -> dict[str, dict[str, dict]]:
    """Per arm and metric (from per-user evaluation frames, one per seed): mean, std, n_users, delta_pct,
    p_users and p_seeds against ``reference`` (Holm-adjusted over ``metrics`` within each arm)."""
    out: dict[str, dict[str, dict]] = {}
    for metric in metrics:
        reference_runs = [_values(f, metric, item_slice) for f in frames[reference]]
        ref_user = pd.concat(reference_runs, axis=1).mean(axis=1)
        ref_seed = np.array([v.mean() for v in reference_runs])
        raw: dict[str, tuple[float, float | None]] = {}
        for arm, seed_frames in frames.items():
            series = [_values(f, metric, item_slice) for f in seed_frames]
            means = np.array([s.mean() for s in series])
            user = pd.concat(series, axis=1).mean(axis=1)
            cell = {"mean": float(means.mean()), "std": float(means.std(ddof=1)) if len(means) > 1 else None,
                    "n_users": len(user)}
            if arm != reference and len(user):
                common = ref_user.index.intersection(user.index)
                p_users = float(stats.ttest_rel(user[common], ref_user[common]).pvalue)
                p_seeds = (float(stats.ttest_ind(means, ref_seed, equal_var=False).pvalue)
                           if len(means) > 1 and len(ref_seed) > 1 else None)
                raw[arm] = (p_users, p_seeds)
                cell["delta_pct"] = 100 * (cell["mean"] / ref_seed.mean() - 1) if ref_seed.mean() else None
            out.setdefault(arm, {})[metric] = cell
        for arm, (p_users, p_seeds) in raw.items():
            out[arm][metric].update(p_users=p_users, p_seeds=p_seeds)
    for arm in out:  # Holm over the metrics of each arm, as kt compare does
        for key in ("p_users", "p_seeds"):
            ps = [out[arm][m].get(key) for m in metrics]
            if all(p is not None for p in ps):
                for m, p in zip(metrics, adjust(ps, "holm")):
                    out[arm][m][key] = p
    return out


def cell_text(cell: dict) -> str:
    """``mean ± std (delta%*; users p=..., seeds p=...)``; ``*`` = both adjusted p below 0.05."""
    text = f"{cell['mean']:.4f}" + (f" ± {cell['std']:.4f}" if cell.get("std") is not None else "")
    if "p_users" not in cell:
        return text
    seeds = f", seeds p={cell['p_seeds']:.2g}" if cell.get("p_seeds") is not None else ""
    star = " *" if cell["p_users"] < 0.05 and (cell.get("p_seeds") is None or cell["p_seeds"] < 0.05) else ""
    delta = f"{cell['delta_pct']:+.1f}%" if cell.get("delta_pct") is not None else "n/a"
    return text + f" ({delta}{star}; users p={cell['p_users']:.2g}{seeds})"


def markdown(title: str, rows: dict[str, dict[str, dict]], metrics: list[str]) -> list[str]:
    """One markdown table: a row per arm, a column per metric."""
    return [title, "", "| arm | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics),
            *[f"| {arm} | " + " | ".join(cell_text(rows[arm][m]) for m in metrics) + " |" for arm in rows], ""]
