"""How long each lesson's live figure takes to compute (the Learn page draws it on every visit).

Each figure is computed once to warm imports and caches, then timed (best of ``--repeats``) and
printed against the goal of 1 s, and as a ratio to one ResNet-50 analysis measured in the same
run, so a loaded machine shows up in the baseline rather than as a false alarm.

Usage: ``python benchmarks/lessons.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import best_of

from playground.analysis import analyse_module
from playground.build import build_model
from playground.lessons import LESSONS, lesson_figure
from playground.presets import get_preset

GOAL_S = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    spec = get_preset("resnet50")
    base = best_of(lambda: analyse_module(build_model(spec, device="meta"), spec.input.shape),
                 args.repeats)
    print(f"baseline: one ResNet-50 analysis {base * 1e3:.1f} ms; goal per figure {GOAL_S:.1f} s\n")
    print("| lesson | figure | x ResNet-50 | within goal |")
    print("|---|---|---|---|")
    for lesson_id in LESSONS:
        lesson_figure(lesson_id)  # warm: imports, cached analyses
        t = best_of(lambda i=lesson_id: lesson_figure(i), args.repeats)
        print(f"| {lesson_id} | {t * 1e3:,.0f} ms | {t / base:.1f}x | "
              f"{'yes' if t < GOAL_S else 'NO'} |")


if __name__ == "__main__":
    main()
