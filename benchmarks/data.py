"""Time every data set that needs no download, cold (generated) and warm (from the cache).

Run: ``python -m benchmarks.data`` from the repository root. Prints one row per set and input
shape with the seconds for the first load (generation, default n_train/n_val), a second load
(cache hit plus the defensive copy), and the size of the tensors.
"""

from __future__ import annotations

import time

import torch

from playground.data import clear_cache, list_datasets, load_dataset


def time_load(name: str, repeats: int = 3, **kwargs: object) -> tuple[float, float, float]:
    """(cold seconds, warm seconds, MiB of the four tensors), best of ``repeats``.

    Best-of rather than mean: on a shared machine the minimum is the least disturbed run.
    """
    colds, warms = [], []
    for _ in range(repeats):
        clear_cache()
        start = time.perf_counter()
        split = load_dataset(name, **kwargs)  # type: ignore[arg-type]
        colds.append(time.perf_counter() - start)
        start = time.perf_counter()
        load_dataset(name, **kwargs)  # type: ignore[arg-type]
        warms.append(time.perf_counter() - start)
    tensors = (split.train_x, split.train_y, split.val_x, split.val_y)
    mib = sum(t.numel() * t.element_size() for t in tensors) / 2**20
    return min(colds), min(warms), mib


def main() -> None:
    load_dataset("shapes", n_train=10, n_val=10)  # first-call overheads out of the numbers
    rows = []
    for info in list_datasets():
        if info.needs_download:
            continue
        for shape in info.input_shapes[:3]:
            rows.append((info.name, shape, *time_load(info.name, input_shape=shape)))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'set':10} {'input':>12} {'cold s':>7} {'warm s':>7} {'MiB':>7}")
    for name, shape, cold, warm, mib in rows:
        print(f"{name:10} {'x'.join(map(str, shape)):>12} {cold:7.3f} {warm:7.3f} {mib:7.1f}")


if __name__ == "__main__":
    main()
