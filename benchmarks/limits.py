"""Worst cases inside the schema bounds (``playground/limits.py``), and hostile input outside them.

Each row is timed as validate + build on meta + analyse, uncached, the best of ``--repeats``,
and printed as a ratio to ResNet-50 at 224x224 measured in the same run (the README's
reference). Goal: every design inside the bounds well under a second on the 2-core machine;
every refused input under a second as well.

Usage: ``python benchmarks/limits.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import best_of

from playground.analysis import analyse_module
from playground.build import build_model, check
from playground.errors import PlaygroundError
from playground.presets import get_preset
from playground.share import decode_spec, encode_state
from playground.spec import NetworkSpec, spec_from_dict, spec_from_text

INSIDE: dict[str, dict[str, Any]] = {
    "128 conv layers, width 64": {"stages": [{"depth": 64, "width": 64}] * 2},
    "128 basic blocks": {"stages": [{"block": "basic", "depth": 64, "width": 16}] * 2},
    "128 bottleneck blocks": {"stages": [{"block": "bottleneck", "depth": 64, "width": 16}] * 2},
    "32 stages, 4 layers each": {"stages": [{"depth": 4, "width": 8}] * 32},
    "widest: 8,192 ch at 1,024 px, 16 hidden": {
        "input": {"channels": 64, "height": 1024, "width": 1024},
        "stages": [{"width": 8192, "kernel": 1, "stride": 64}],
        "head": {"pool": "adaptive_avg", "pool_size": 3, "hidden": [8192] * 16}},
}
LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)) + "name: *i\n"
REFUSED: dict[str, Callable[[], Any]] = {
    "YAML billion laughs (320 B)": lambda: spec_from_text(LAUGHS, "x.yaml"),
    "JSON nested 10,000 deep": lambda: spec_from_text('{"name": ' + "[" * 10_000
                                                      + "]" * 10_000 + "}", "x.json"),
    "5,000-digit integer": lambda: spec_from_text('{"num_classes": ' + "9" * 5000 + "}",
                                                  "x.json"),
    "share link, 60,000 hidden layers": lambda: decode_spec(encode_state(
        {"head": {"hidden": [4] * 60_000}})),
    "32 stages x depth 256 x width 8,192": lambda: spec_from_dict(
        {"stages": [{"depth": 256, "width": 8192}] * 32}),
}


def _analyse(spec: NetworkSpec) -> None:
    check(spec)
    analyse_module(build_model(spec, device="meta"), spec.input.shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base = best_of(lambda: _analyse(get_preset("resnet50")), args.repeats)
    print(f"baseline: ResNet-50 at 224x224, validate + build + analyse: {base * 1e3:.1f} ms\n")
    print("| case | inside bounds | time | x ResNet-50 |")
    print("|---|---|---|---|")
    for label, data in INSIDE.items():
        spec = spec_from_dict(data)
        t = best_of(lambda s=spec: _analyse(s), args.repeats)
        print(f"| {label} | yes | {t * 1e3:,.0f} ms | {t / base:.1f}x |")
    for label, fn in REFUSED.items():
        t = best_of(fn, args.repeats, PlaygroundError)
        print(f"| {label} | refused | {t * 1e3:,.1f} ms | {t / base:.2f}x |")


if __name__ == "__main__":
    main()
