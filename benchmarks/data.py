"""Time loading every data set: built-in ones and, from full-size files, the torchvision ones.

Run: ``python -m benchmarks.data`` from the repository root. Prints one row per set and input
shape with the seconds for the first load (generation or reading the files, default
n_train/n_val), a second load (cache hit plus the defensive copy), and the size of the tensors.

The torchvision sets are timed on files written here in their real formats at their real sizes
(60,000 + 10,000 MNIST images, 50,000 + 10,000 CIFAR, 73,257 + 26,032 SVHN), since the official
downloads may not be reachable; torchvision is told these files' MD5 sums (see
``tests/data_files.py``), so the checksum work is measured as with the real files. Writing them
takes a minute and about 1 GB: ``--files DIR`` keeps them in ``DIR`` for the next run.
``--only-files`` skips the built-in sets; ``--repeats N`` sets the best-of count. Last, it
times how soon a download that cannot happen (no internet) gives up.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch

from playground.data import DatasetUnavailableError, clear_cache, list_datasets, load_dataset
from tests import data_files


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


def time_offline_failure(root: Path) -> float:
    """Seconds until loading MNIST into an empty ``root`` gives up; NaN if it is downloaded.

    On a machine without internet this is the fail-fast path: one probe of the download hosts.
    """
    start = time.perf_counter()
    try:
        load_dataset("mnist", root=root, n_train=10, n_val=10)
    except DatasetUnavailableError:
        return time.perf_counter() - start
    return float("nan")


def write_full_size_files(root: Path) -> None:
    """Every torchvision set at its official size under ``root`` (skips sets already there)."""
    if not (root / "MNIST").exists():
        data_files.make_mnist(root, "MNIST", n_train=60_000, n_test=10_000)
    if not (root / "FashionMNIST").exists():
        data_files.make_mnist(root, "FashionMNIST", gz=True, n_train=60_000, n_test=10_000)
    if not (root / "cifar-10-batches-py").exists():
        data_files.make_cifar(root, per_batch=10_000, n_test=10_000)
    if not (root / "cifar-100-python").exists():
        data_files.make_cifar(root, hundred=True, per_batch=10_000, n_test=10_000)
    if not (root / "train_32x32.mat").exists():
        data_files.make_svhn(root, n_train=73_257, n_test=26_032)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=Path, help="folder for the full-size files (kept)")
    parser.add_argument("--only-files", action="store_true", help="skip the built-in sets")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    load_dataset("shapes", n_train=10, n_val=10)  # first-call overheads out of the numbers
    rows = []
    for info in list_datasets():
        if info.needs_download or args.only_files:
            continue
        for shape in info.input_shapes[:3]:
            rows.append((info.name, shape, *time_load(info.name, args.repeats, input_shape=shape)))

    start = time.perf_counter()
    import torchvision.datasets  # noqa: F401  (a one-off cost of the first file load)

    imported = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        root = args.files or Path(tmp)
        start = time.perf_counter()
        write_full_size_files(root)
        written = time.perf_counter() - start
        for cls, attr, value in data_files.checksum_patches(root):
            setattr(cls, attr, value)
        for info in list_datasets():
            if info.needs_download:
                shape = info.input_shape
                rows.append((info.name, shape, *time_load(
                    info.name, args.repeats, root=root, allow_download=False)))
        offline = time_offline_failure(Path(tmp) / "absent")

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; full-size files "
          f"written in {written:.1f} s; torchvision.datasets imported in {imported:.2f} s")
    if math.isnan(offline):
        print("a MNIST download host answered: the offline case was not timed")
    else:
        print(f"offline, loading MNIST gives up after {offline:.2f} s (goal: under 2.5 s)")
    print(f"{'set':14} {'input':>12} {'cold s':>7} {'warm s':>7} {'MiB':>7}")
    for name, shape, cold, warm, mib in rows:
        print(f"{name:14} {'x'.join(map(str, shape)):>12} {cold:7.3f} {warm:7.3f} {mib:7.1f}")


if __name__ == "__main__":
    main()
