"""Time ``playground.analysis.analyse_module`` against fvcore and torchinfo.

Run: ``python benchmarks/analysis.py`` (or ``python -m benchmarks.analysis``) from the repository
root. One row per model and input size:

* ``ours build+analyse``: median wall time of building the model under
  ``with torch.device("meta"):`` *and* analysing it (what the app does for a new design);
* ``ours analyse``: the analysis alone, on an already built meta model;
* ``fvcore``: ``FlopCountAnalysis(model, zeros).total()`` on a built CPU model (a JIT trace and
  a real forward pass);
* ``torchinfo``: ``torchinfo.summary(model, input_size, verbose=0)`` on the CPU model (a real
  forward pass with hooks);
* ``totals agree``: our MACs == fvcore's total (both count one multiply-add as one FLOP).

Medians, not means: on a shared machine a few runs are disturbed. fvcore and torchinfo get
fewer repetitions because each takes up to seconds.
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision import models

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # ``python benchmarks/analysis.py`` puts benchmarks/ first
    sys.path.insert(0, str(ROOT))

OURS_REPEATS = 15
OTHER_REPEATS = 3


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up: lazy imports and first-call caches out of the numbers
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def cases() -> list[tuple[str, Callable[[], nn.Module], tuple[int, ...]]]:
    """(label, builder, input shape); the CIFAR ResNet-56 comes from the project's presets."""
    rows: list[tuple[str, Callable[[], nn.Module], tuple[int, ...]]] = [
        ("VGG-19", models.vgg19, (3, 224, 224)),
        ("ResNet-50", models.resnet50, (3, 224, 224)),
        ("ResNet-18", models.resnet18, (3, 32, 32)),
    ]
    try:
        from playground.build import build_model
        from playground.presets import get_preset

        spec = get_preset("resnet56_cifar")
        shape = (spec.input.channels, spec.input.height, spec.input.width)
        rows.append(("ResNet-56 (CIFAR preset)", lambda: build_model(spec), shape))
    except Exception as err:  # another module's owner builds these
        print(f"note: skipping the CIFAR ResNet-56 row ({type(err).__name__}: {err})")
    return rows


def main() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit deprecation notes
    from fvcore.nn import FlopCountAnalysis
    from torchinfo import summary

    from playground.analysis import analyse_module

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    header = ("model", "input", "ours build+analyse ms", "ours analyse ms", "fvcore ms",
              "torchinfo ms", "fvcore/ours", "totals agree")
    table = []
    for label, make, shape in cases():
        def ours(make: Callable[[], nn.Module] = make, shape: tuple[int, ...] = shape) -> int:
            with torch.device("meta"):
                model = make()
            return analyse_module(model, shape).macs

        with torch.device("meta"):
            meta_model = make()
        ours_ms = median_ms(ours, OURS_REPEATS)
        analyse_ms = median_ms(lambda m=meta_model, s=shape: analyse_module(m, s), OURS_REPEATS)

        cpu_model = make().eval()
        x = torch.zeros(1, *shape)

        def fv(model: nn.Module = cpu_model, x: torch.Tensor = x) -> float:
            flops = FlopCountAnalysis(model, x)
            flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            flops.tracer_warnings("none")
            return flops.total()

        fvcore_ms = median_ms(fv, OTHER_REPEATS)
        torchinfo_ms = median_ms(
            lambda m=cpu_model, s=shape: summary(m, input_size=(1, *s), verbose=0, device="cpu"),
            OTHER_REPEATS,
        )
        agree = ours() == int(fv())
        table.append((label, "x".join(map(str, shape)), f"{ours_ms:.1f}", f"{analyse_ms:.1f}",
                      f"{fvcore_ms:.0f}", f"{torchinfo_ms:.0f}", f"{fvcore_ms / ours_ms:.0f}x",
                      "yes" if agree else "NO"))
        del cpu_model

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for line in table:
        print("| " + " | ".join(line) + " |")


if __name__ == "__main__":
    main()
