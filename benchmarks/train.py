"""Throughput of the instrumented ``train()`` against a bare PyTorch loop, in one process.

Both loops use the same model (built from the same spec and seed), the same data tensors, the
same shuffled batches, the same optimiser and the same number of steps. The bare loop does
only ``zero_grad / forward / cross_entropy / backward / step``; ``train()`` adds everything it
records (per-step loss, accuracy, lr, total and per-layer gradient norms, update ratios,
activation statistics every ``stats_every`` steps, the flushes of records to ``emit``).

Each case runs with a fixed number of torch intra-op threads (``torch.set_num_threads``): the
deep MLP, the hardest case (a bare step of about a millisecond on a fast core, where the
instrumentation's fixed cost weighs most), runs on one thread and on two.

Columns: samples/s of each loop (``train()``'s is its summary's ``samples_per_s``, which
excludes validation passes: the bare loop has none), their ratio and whether it meets the goal
(at least 0.90); then the ratio of the process CPU time of the whole calls (model build,
``train()``'s setup and final evaluation included), which other processes on a shared machine
disturb less than wall time.

The two loops alternate, ``--repeats`` times each after one warm-up of each, in the order
bare/train then train/bare (so that a slow drift of the machine hits both alike); the table
shows medians. The load average is printed before and after: on a machine whose cores are busy
with other work the ratios move by several percent, two-thread runs most of all.

Run from the repository root: ``python benchmarks/train.py``; on a GPU
``python benchmarks/train.py --device cuda --batch 256`` (the CPU-time column then mostly
measures the host's launch work, since both loops wait on the GPU).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playground.build import build_model
from playground.data import DataSplit, get_dataset_info, load_dataset
from playground.optim import build_optimizer
from playground.presets import get_preset
from playground.spec import NetworkSpec
from playground.train import TrainSettings, train

GOAL = 0.90  # train() keeps at least this share of the bare loop's samples/s


def bare_loop(spec: NetworkSpec, settings: TrainSettings, data: DataSplit) -> float:
    """The plainest loop doing the same optimisation; returns samples/s of its loop."""
    torch.manual_seed(settings.seed)
    model = build_model(spec).to(settings.device)
    model.train()
    opt = build_optimizer(settings.optimizer, model, lr=settings.lr)
    x = data.train_x.reshape(data.train_x.shape[0], *spec.input.shape)
    y = data.train_y
    gen = torch.Generator().manual_seed(settings.seed)
    b, n = settings.batch_size, int(x.shape[0])
    step = 0
    t0 = time.perf_counter()
    while step < settings.steps:
        order = torch.randperm(n, generator=gen).to(x.device)
        for start in range(0, n - b + 1, b):
            if step == settings.steps:
                break
            idx = order[start:start + b]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            step += 1
    float(loss.detach())  # wait for the last step (a no-op on CPU, a sync on a GPU)
    return settings.steps * b / (time.perf_counter() - t0)


def instrumented(spec: NetworkSpec, settings: TrainSettings, data: DataSplit) -> float:
    """train() with everything recorded; returns samples/s of its loop (evaluation excluded)."""
    records: list[dict] = []
    result = train(spec, settings, emit=records.extend, data=data)
    assert result.status == "finished", result.message
    return float(result.summary["samples_per_s"])


def timed(fn: Callable[..., float], *args: object) -> tuple[float, float]:
    """(loop samples/s as ``fn`` reports it, CPU seconds of this process for the whole call)."""
    c = time.process_time()
    rate = fn(*args)
    return rate, time.process_time() - c


# preset, data set, input shape, steps, torch threads (0: torch's default for this machine)
CASES = (
    ("small_cnn", "shapes", (3, 32, 32), 20, 0),
    ("mlp_points", "spirals", (2,), 600, 1),
    ("deep_sigmoid_mlp", "digits", (1, 16, 16), 300, 1),
    ("deep_sigmoid_mlp", "digits", (1, 16, 16), 300, 2),
)


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the step counts")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    parser.add_argument("--batch", type=int, default=64, help="batch size")
    args = parser.parse_args(argv)
    default_threads = torch.get_num_threads()
    where = (torch.cuda.get_device_name(args.device) if args.device.startswith("cuda")
             else args.device.upper())
    print(f"torch {torch.__version__} on {where} ({os.cpu_count()} cores, {default_threads} "
          f"threads by default); median of {args.repeats} alternating runs of each loop after "
          f"one warm-up; load average {load()} at the start\n")
    print("| model | data | threads | batch | steps | bare loop samples/s | train() samples/s "
          f"| ratio | >= {GOAL:.2f} | ratio, whole call in CPU time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    ratios = []
    for preset, dataset, shape, steps, threads in CASES:
        torch.set_num_threads(threads or default_threads)
        steps = max(10, int(steps * args.scale))
        spec = get_preset(preset)
        n_train = min(max(1000, 4 * args.batch), get_dataset_info(dataset).max_train)
        data = load_dataset(dataset, input_shape=shape, n_train=n_train, n_val=200,
                            device=args.device)
        settings = TrainSettings(dataset=dataset, optimizer="adam", lr=1e-3,
                                 batch_size=args.batch, steps=steps, eval_every=steps,
                                 device=args.device)
        bare_loop(spec, settings, data)  # warm-up: allocator, kernels, caches
        instrumented(spec, settings, data)
        bare, inst = [], []
        for rep in range(args.repeats):
            first, second = (bare_loop, instrumented) if rep % 2 == 0 else (instrumented,
                                                                             bare_loop)
            for fn in (first, second):
                (bare if fn is bare_loop else inst).append(timed(fn, spec, settings, data))
        b, i = (statistics.median(t[0] for t in r) for r in (bare, inst))
        bc, ic = (statistics.median(t[1] for t in r) for r in (bare, inst))
        ratios.append(i / b)
        shown = "x".join(map(str, shape))
        print(f"| {preset} | {dataset} {shown} | {torch.get_num_threads()} | {args.batch} | "
              f"{steps} | {b:,.0f} | {i:,.0f} | {i / b:.2f}x | "
              f"{'yes' if i / b >= GOAL else 'NO'} | {bc / ic:.2f}x |", flush=True)
    torch.set_num_threads(default_threads)
    print(f"\nload average {load()} at the end; goal met in {sum(r >= GOAL for r in ratios)} "
          f"of {len(ratios)} cases")


if __name__ == "__main__":
    main()
