"""Time ``playground.analysis.analyse_module`` against fvcore and torchinfo.

Run: ``python benchmarks/analysis.py`` (or ``python -m benchmarks.analysis``) from the repository
root. One row per model and input size:

* ``ours build+analyse``: median wall time of building the model on the meta device the way
  the app does (``playground.zoo.build_zoo_model(name, device="meta")`` for torchvision models,
  ``build_model(spec, device="meta")`` for presets) *and* analysing it;
* ``ours analyse``: the analysis alone, on an already built meta model;
* ``fvcore``: ``FlopCountAnalysis(model, zeros).total()`` on a built CPU model (a JIT trace and
  a real forward pass);
* ``torchinfo``: ``torchinfo.summary(model, input_size, verbose=0)`` on the CPU model (a real
  forward pass with hooks);
* ``totals agree``: our MACs == fvcore's total (both count one multiply-add as one FLOP).

A second table times the ways to build a torchvision model for analysis: a plain
``torch.device("meta")`` build (impossible for RegNet, whose constructor reads tensor values),
the zoo's meta build (value factories on the CPU, weight initialisers skipped) and the slow
path, a real CPU build (random initialisation) moved to meta with ``.to("meta")``.

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


Case = tuple[str, Callable[[], nn.Module], Callable[[], nn.Module], tuple[int, ...]]


def _zoo_case(label: str, name: str, shape: tuple[int, ...]) -> Case:
    from playground.zoo import build_zoo_model

    return (label, lambda: build_zoo_model(name, device="meta"),
            lambda: models.get_model(name, weights=None), shape)


def cases() -> list[Case]:
    """(label, meta builder, CPU builder, input shape); ResNet-56 is the project's preset."""
    rows = [
        _zoo_case("VGG-19", "vgg19", (3, 224, 224)),
        _zoo_case("ResNet-50", "resnet50", (3, 224, 224)),
        _zoo_case("ResNet-18", "resnet18", (3, 32, 32)),
        _zoo_case("RegNetY-400MF", "regnet_y_400mf", (3, 224, 224)),
    ]
    try:
        from playground.build import build_model
        from playground.presets import get_preset

        spec = get_preset("resnet56_cifar")
        shape = (spec.input.channels, spec.input.height, spec.input.width)
        rows.append(("ResNet-56 (CIFAR preset)", lambda: build_model(spec, device="meta"),
                     lambda: build_model(spec), shape))
    except Exception as err:  # another module's owner builds these
        print(f"note: skipping the CIFAR ResNet-56 row ({type(err).__name__}: {err})")
    return rows


def build_times() -> list[tuple[str, ...]]:
    """ms to build a torchvision model for analysis: plain meta, the zoo's meta build, and the
    slow path (a CPU build with random initialisation, then ``.to("meta")``)."""
    from playground.zoo import build_zoo_model

    out = []
    for name, repeats in (("resnet50", OTHER_REPEATS), ("regnet_y_400mf", OTHER_REPEATS),
                          ("regnet_y_16gf", OTHER_REPEATS)):
        def plain(name: str = name) -> nn.Module:
            with torch.device("meta"):
                return models.get_model(name, weights=None)

        try:
            plain_ms = f"{median_ms(plain, repeats):.0f}"
        except NotImplementedError:  # RegNet: "Cannot copy out of meta tensor"
            plain_ms = "fails"
        zoo_ms = median_ms(lambda name=name: build_zoo_model(name, device="meta"), repeats)
        cpu_ms = median_ms(lambda name=name: models.get_model(name, weights=None).to("meta"),
                           repeats)
        out.append((name, plain_ms, f"{zoo_ms:.0f}", f"{cpu_ms:.0f}", f"{cpu_ms / zoo_ms:.0f}x"))
    return out


def main() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit deprecation notes
    from fvcore.nn import FlopCountAnalysis
    from torchinfo import summary

    from playground.analysis import analyse_module

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    header = ("model", "input", "ours build+analyse ms", "ours analyse ms", "fvcore ms",
              "torchinfo ms", "fvcore/ours", "totals agree")
    table = []
    for label, make, make_cpu, shape in cases():
        def ours(make: Callable[[], nn.Module] = make, shape: tuple[int, ...] = shape) -> int:
            return analyse_module(make(), shape).macs

        meta_model = make()
        ours_ms = median_ms(ours, OURS_REPEATS)
        analyse_ms = median_ms(lambda m=meta_model, s=shape: analyse_module(m, s), OURS_REPEATS)

        torch.manual_seed(0)
        cpu_model = make_cpu().eval()
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
    print()
    header = ("model", "plain meta build ms", "zoo meta build ms", "CPU build + .to(meta) ms",
              "CPU/zoo")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for line in build_times():
        print("| " + " | ".join(line) + " |")


if __name__ == "__main__":
    main()
