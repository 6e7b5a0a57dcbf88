"""Small (or full-size) data set files in the real on-disk formats torchvision reads.

Used by ``tests/test_data.py`` and ``benchmarks/data.py``: MNIST-style IDX files (optionally
gzipped), CIFAR-10/100 python batches (protocol-2 pickles, as the official files are) and SVHN
``.mat`` files. Every image encodes its label and channel in its pixels (see
:func:`labelled_images`), so a reader that mixes up pairing or channel order is caught.

torchvision checks the CIFAR and SVHN files against the MD5 sums of the official downloads;
these files are not the official ones, so :func:`checksum_patches` lists the class attributes
that make torchvision expect *these* files' sums instead. The check itself stays in force: a
file changed after the sums were taken is refused, as a tampered official file would be.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> None:
    """LeCun's IDX format: 0, 0, type 0x08 (ubyte), ndim, big-endian dims, then the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload, compresslevel=1)
    path.write_bytes(payload)


def labelled_images(n: int, channels: int, size: int, offset: int) -> tuple[np.ndarray, ...]:
    """Images whose every pixel encodes (label, channel) so pairing and channel order show.

    Pixel value = label * 20 + channel * 7; labels cycle 0..9 starting at ``offset``.
    """
    labels = (np.arange(n) + offset) % 10
    images = np.empty((n, channels, size, size), dtype=np.uint8)
    for c in range(channels):
        images[:, c] = (labels * 20 + c * 7)[:, None, None]
    return images, labels


def make_mnist(root: Path, folder: str, gz: bool = False, n_train: int = 50,
               n_test: int = 30) -> None:
    """``<root>/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n, offset in (("train", n_train, 0), ("t10k", n_test, 3)):
        images, labels = labelled_images(n, 1, 28, offset)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images[:, 0], gz)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, gz)


def make_cifar(root: Path, hundred: bool = False, per_batch: int = 12,
               n_test: int = 20) -> list[str]:
    """The unpacked ``cifar-10-batches-py`` (5 training batches) or ``cifar-100-python``.

    Returns the class names written to the meta file. CIFAR-100 gets ``5 * per_batch``
    training images in its one ``train`` file.
    """
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    label_key = "fine_labels" if hundred else "labels"
    if hundred:
        files = [("train", 5 * per_batch, 0)]
    else:
        files = [(f"data_batch_{i}", per_batch, i) for i in range(1, 6)]
    files.append(("test" if hundred else "test_batch", n_test, 7))
    for k, (name, n, offset) in enumerate(files):
        images, labels = labelled_images(n, 3, 32, offset)
        entry: dict[str, Any] = {
            "batch_label": name,
            label_key: [int(v) for v in labels],
            "data": images.reshape(n, 3072),  # row = 1024 red, 1024 green, 1024 blue
            "filenames": [f"img_{i}.png" for i in range(n)],
        }
        if hundred:
            entry["coarse_labels"] = [0] * n
        payload = pickle.dumps(entry, protocol=2)  # the real files are protocol-2 pickles
        if k == 0:  # ... written before numpy 2, so they name numpy.core, not numpy._core
            payload = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        (folder / name).write_bytes(payload)
    names = [f"class_{i}" for i in range(100 if hundred else 10)]
    if hundred:
        meta: dict[str, Any] = {"fine_label_names": names, "coarse_label_names": []}
    else:
        meta = {"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}
    with open(folder / ("meta" if hundred else "batches.meta"), "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return names


def make_svhn(root: Path, n_train: int = 40, n_test: int = 20) -> None:
    """``<root>/{train,test}_32x32.mat``: ``X`` as (H, W, C, N), ``y`` with 10 for the digit 0."""
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    for name, n, offset in (("train_32x32.mat", n_train, 0), ("test_32x32.mat", n_test, 5)):
        images, labels = labelled_images(n, 3, 32, offset)
        stored = np.where(labels == 0, 10, labels)  # SVHN writes the digit 0 as 10
        savemat(root / name, {"X": images.transpose(2, 3, 1, 0), "y": stored[:, None]})


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def checksum_patches(root: Path) -> list[tuple[type, str, Any]]:
    """``(class, attribute, value)`` that make torchvision expect the files now under ``root``.

    Covers whichever of the CIFAR-10, CIFAR-100 and SVHN files exist; apply them with
    ``monkeypatch.setattr(cls, attr, value)`` (or ``setattr`` in a throw-away process).
    """
    import torchvision.datasets as tvd

    patches: list[tuple[type, str, Any]] = []
    for cls in (tvd.CIFAR10, tvd.CIFAR100):
        folder = root / cls.base_folder
        if not folder.is_dir():
            continue
        for attr in ("train_list", "test_list"):
            sums = [[name, md5(folder / name)] for name, _ in getattr(cls, attr)]
            patches.append((cls, attr, sums))
        meta = dict(cls.meta, md5=md5(folder / cls.meta["filename"]))
        patches.append((cls, "meta", meta))
    if (root / "train_32x32.mat").is_file():
        splits = {
            split: [url, name, md5(root / name) if (root / name).is_file() else sum_]
            for split, (url, name, sum_) in tvd.SVHN.split_list.items()
        }
        patches.append((tvd.SVHN, "split_list", splits))
    return patches
