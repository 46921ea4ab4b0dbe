"""Training-epoch time of kt's loop against RecBole's own trainer, read against an A/A control.

On a shared 2-core machine one epoch's time swings by 20-30% from round to round, so a single kt/RecBole ratio
says little. Here each loop runs on two twin sessions of the same config and seed (built in turns: kt, RecBole,
RecBole, kt); the two RecBole twins are the control: how far two identical loops drift apart is the noise floor
the kt/RecBole ratio must be read against. bench/scale.py and bench/sequential.py both time this way.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

SIDES = ("kt", "recbole", "control", "kt-twin")


def twin_epochs(build: Callable[[], Any], epochs: int, recbole: bool = True) -> dict[str, Any]:
    """Seconds of ``epochs`` timed rounds (after one untimed) in which every side runs one training epoch, the order
    rotated each round. ``build`` makes a fresh kt Session of the config under test; with ``recbole=False`` only
    kt's loop is timed (sizes RecBole cannot hold). Medians over rounds; ratios against RecBole's first twin."""
    import torch
    from recbole.trainer import Trainer

    from kt_cli.training.trainer import build_optimizer, train_epoch

    torch.set_num_threads(1)
    sides: dict[str, Callable[[], Any]] = {}
    for side in SIDES if recbole else SIDES[:1]:
        session = build()
        if side.startswith("kt"):
            sides[side] = (lambda s=session, o=build_optimizer(session.trainable(), session.parts.config):
                           train_epoch(s, o))
        else:
            sides[side] = (lambda t=Trainer(session.parts.config, session.model), data=session.parts.train_data:
                           t._train_epoch(data, 0, show_progress=False))
    seconds: dict[str, list[float]] = {side: [] for side in sides}
    names = list(sides)
    for round_ in range(epochs + 1):
        turn = round_ % len(names)
        for side in names[turn:] + names[:turn]:
            start = time.perf_counter()
            sides[side]()
            if round_:
                seconds[side].append(time.perf_counter() - start)
    median = {side: statistics.median(values) for side, values in seconds.items()}
    if not recbole:
        return {"seconds": median["kt"], "kt_seconds": median["kt"]}
    kt_all, rb_all = seconds["kt"] + seconds["kt-twin"], seconds["recbole"] + seconds["control"]
    return {"seconds": statistics.median(kt_all), "kt_seconds": statistics.median(kt_all),
            "recbole_seconds": statistics.median(rb_all),
            "ratio": statistics.median(kt_all) / statistics.median(rb_all),
            "control_ratio": median["control"] / median["recbole"],
            "kt_twin_ratio": median["kt-twin"] / median["kt"],
            "kt_round_ratios": [a / b for a, b in zip(seconds["kt"], seconds["recbole"])],
            "control_round_ratios": [a / b for a, b in zip(seconds["control"], seconds["recbole"])]}


def spread(ratios: list[float]) -> str:
    """The range of single-round ratios, as the reports print it."""
    return f"{min(ratios):.2f}-{max(ratios):.2f}x" if ratios else "-"
