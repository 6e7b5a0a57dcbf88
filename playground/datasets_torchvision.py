"""The torchvision data sets: MNIST, Fashion-MNIST, CIFAR-10/100 and SVHN, read by torchvision.

Importing this module registers the five sets in :data:`playground.data.DATASETS` (after the
built-in ones, so menus list those first); everything else goes through
:func:`playground.data.load_dataset`.

Reading. The files live in ``root`` (default: settings ``data_dir``) in exactly the layout
torchvision downloads, e.g. ``<root>/MNIST/raw/train-images-idx3-ubyte``,
``<root>/cifar-10-batches-py/data_batch_1``, ``<root>/train_32x32.mat``, and are read by
torchvision's own classes (``torchvision.datasets.MNIST``, ``FashionMNIST``, ``CIFAR10``,
``CIFAR100``, ``SVHN``) with ``download=False``. Their ``data``/``targets`` arrays are taken
once per process (no ``__getitem__``, no ``DataLoader``); the playground then draws a seeded
subset, converts it to float tensors and keeps it on the device (see ``playground.data``).
MNIST files still in their downloaded ``.gz`` form are unpacked once next to themselves, as
torchvision's download does. SVHN's ``.mat`` files need scipy (a dependency of scikit-learn).

Safety. torchvision reads the CIFAR batches with ``pickle``, which can run code. It only does
so after checking every batch and the meta file against the MD5 sums of the official
downloads (``CIFAR10._check_integrity`` and ``_load_meta``), so the only bytes ever unpickled
are those of the official archives, whoever put the files in the data directory: making a
different file with a given MD5 (a second preimage) is out of reach, unlike making two new
files that collide. SVHN is checked the same way; MNIST's IDX files hold no code and are
only parsed. ``tests/test_data.py`` pins this: a tampered batch is refused before it is read.

Downloading (:func:`ensure_files`) uses torchvision's downloader, only when files are
missing, and only after one quick probe (about 2 s at most) finds a download host (or the
configured proxy) reachable, so an offline machine fails at once with a one-line message that
names the files and the folder. Downloads go to a temporary folder inside ``root`` and are
moved into place when complete; on failure nothing is left behind, not even the folders made
for them. Every failure is a :class:`~playground.data.DatasetUnavailableError`.

References: LeCun et al. 1998 (MNIST); Xiao, Rasul & Vollgraf 2017 (Fashion-MNIST);
Krizhevsky 2009 (CIFAR); Netzer et al. 2011 (SVHN).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import queue
import shutil
import socket
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from playground.data import (
    _DIGIT_NAMES,
    _FALLBACK_HINT,
    _IMAGE_SHAPES_RGB,
    DatasetEntry,
    DatasetError,
    DatasetInfo,
    DatasetUnavailableError,
    _Arrays,
    _fit_images,
    _normalise,
    _Request,
    _sub_seed,
    get_dataset_info,
    register_cache_clearer,
)
from playground.data import DATASETS as _DATASETS

__all__ = ["ensure_files"]

PROBE_TIMEOUT_S = 2.0  # longest wait for a download host to answer before calling it offline


@dataclass(frozen=True)
class _FileSet:
    """Where torchvision keeps a set, and what the playground needs to know about it."""

    folder: str  # below root; "" for SVHN, which torchvision keeps directly in root
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str  # CIFAR: file with the class names; "" if none
    fmt: Literal["idx", "cifar", "svhn"]
    url: str  # where to fetch the files by hand
    tv_class: str  # the torchvision.datasets class that reads (and downloads) them
    mean: tuple[float, ...]  # the usual per-channel statistics of the training split
    std: tuple[float, ...]

    def files(self) -> tuple[str, ...]:
        return self.train_files + self.test_files + ((self.meta_file,) if self.meta_file else ())


_IDX_FILES = (
    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
)

_FILESETS: dict[str, _FileSet] = {
    "mnist": _FileSet(
        "MNIST/raw", _IDX_FILES[0], _IDX_FILES[1], "", "idx",
        "https://ossci-datasets.s3.amazonaws.com/mnist/", "MNIST", (0.1307,), (0.3081,),
    ),
    "fashion_mnist": _FileSet(
        "FashionMNIST/raw", _IDX_FILES[0], _IDX_FILES[1], "", "idx",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", "FashionMNIST",
        (0.2860,), (0.3530,),
    ),
    "cifar10": _FileSet(
        "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
        "batches.meta", "cifar", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "CIFAR10", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
    ),
    "cifar100": _FileSet(
        "cifar-100-python", ("train",), ("test",), "meta", "cifar",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "CIFAR100",
        (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
    ),
    "svhn": _FileSet(
        "", ("train_32x32.mat",), ("test_32x32.mat",), "", "svhn",
        "http://ufldl.stanford.edu/housenumbers/", "SVHN",
        (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970),
    ),
}


def _tv_class(fs: _FileSet) -> Any:
    import torchvision.datasets as tvd  # imported late: torchvision takes ~1-2 s to import

    return getattr(tvd, fs.tv_class)


# ---------------------------------------------------------------------------------------------
# what is on disk, and what to tell the user when it is not


def _present(path: Path, fmt: str) -> Path | None:
    """The file to read for ``path``: itself, or for IDX files its ``.gz`` if not unpacked."""
    if path.is_file():
        return path
    gz = path.with_name(path.name + ".gz")
    if fmt == "idx" and gz.is_file():
        return gz
    return None


def _missing_files(fs: _FileSet, root: Path) -> list[str]:
    folder = root / fs.folder
    return [name for name in fs.files() if _present(folder / name, fs.fmt) is None]


def _unavailable_message(info: DatasetInfo, fs: _FileSet, root: Path, missing: list[str]) -> str:
    folder = root / fs.folder
    names = ", ".join(missing)
    gz = " (or the same names ending .gz)" if fs.fmt == "idx" else ""
    how = {
        "idx": f"download the .gz files from {fs.url} into that folder",
        "cifar": f"download {fs.url} and unpack it in {root}",
        "svhn": f"download {', '.join(fs.files())} from {fs.url} into that folder",
    }[fs.fmt]
    return (
        f"The {info.title} files are not in {folder}: missing {names}{gz}. On a machine with "
        f"internet, {how}, {_FALLBACK_HINT}."
    )


def _unpack_gz(fs: _FileSet, folder: Path) -> None:
    """Unpack IDX files present only as ``.gz`` next to themselves (torchvision reads raw)."""
    for name in fs.files():
        path = folder / name
        if path.is_file():
            continue
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
        try:
            with gzip.open(path.with_name(name + ".gz"), "rb") as src, os.fdopen(fd, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            os.replace(tmp, path)  # atomic: a reader never sees half a file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# ---------------------------------------------------------------------------------------------
# downloading


def _download_urls(fs: _FileSet) -> list[str]:
    """The URLs torchvision's downloader will try, taken from its class."""
    cls = _tv_class(fs)
    if fs.fmt == "idx":
        return list(cls.mirrors)
    if fs.fmt == "cifar":
        return [cls.url]
    return [cls.split_list[split][0] for split in ("train", "test")]


def _endpoints(urls: Iterable[str]) -> list[tuple[str, int]]:
    """(host, port) to probe for each URL: its own, or the proxy urllib would go through."""
    proxies = urllib.request.getproxies()
    out: list[tuple[str, int]] = []
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        proxy = proxies.get(parts.scheme)
        if proxy and not urllib.request.proxy_bypass(host):
            parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if host and (host, port) not in out:
            out.append((host, port))
    return out


def _any_reachable(endpoints: list[tuple[str, int]], timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to any endpoint opens within ``timeout`` seconds in all.

    Probes run in daemon threads because a name lookup (``getaddrinfo``) has no timeout of its
    own; one that hangs is abandoned, not waited for.
    """
    answers: queue.Queue[bool] = queue.Queue()

    def probe(host: str, port: int) -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            answers.put(True)
        except (OSError, UnicodeError):  # no name, no route, refused, timed out
            answers.put(False)

    for host, port in endpoints:
        threading.Thread(target=probe, args=(host, port), daemon=True).start()
    deadline = time.monotonic() + timeout
    for _ in endpoints:
        try:
            if answers.get(timeout=max(0.0, deadline - time.monotonic())):
                return True
        except queue.Empty:
            return False
    return False


def _missing_dirs(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    out = []
    while not path.exists() and path != path.parent:
        out.append(path)
        path = path.parent
    return out


def _remove_empty(dirs: list[Path]) -> None:
    for d in dirs:  # deepest first; a folder someone else filled meanwhile stays
        with contextlib.suppress(OSError):
            d.rmdir()


def ensure_files(info: DatasetInfo, root: Path) -> None:
    """Make sure ``info``'s files are in ``root``, downloading them if any is missing.

    Offline (no download host or proxy answers within :data:`PROBE_TIMEOUT_S`) this raises
    at once, before touching the disk. A download goes to a temporary folder inside ``root``
    and is moved into place only when complete; after a failure every folder this call made
    is removed again.
    """
    fs = _FILESETS[info.name]
    missing = _missing_files(fs, root)
    if not missing:
        return
    endpoints = _endpoints(_download_urls(fs))
    if not _any_reachable(endpoints):
        hosts = " or ".join(host for host, _ in endpoints)
        raise DatasetUnavailableError(
            f"Cannot download {info.title}: {hosts} cannot be reached (offline?). "
            + _unavailable_message(info, fs, root, missing)
        )
    made = _missing_dirs(root / fs.folder)
    staging: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".download-{info.name}-", dir=root))
        cls = _tv_class(fs)
        if fs.fmt == "svhn":
            for split in ("train", "test"):
                cls(str(staging), split=split, download=True)
        else:
            cls(str(staging), train=True, download=True)  # fetches both splits
        (root / fs.folder).mkdir(parents=True, exist_ok=True)
        for name in fs.files():  # archives and .gz copies stay behind in the staging folder
            os.replace(staging / fs.folder / name, root / fs.folder / name)
        made = []
    except Exception as err:  # network, disk, checksum: all end as one readable message
        text = " ".join(str(err).split())
        reason = text[:200] if text else type(err).__name__
        raise DatasetUnavailableError(
            f"Could not download {info.title} ({reason}). "
            + _unavailable_message(info, fs, root, missing)
        ) from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(made)


# ---------------------------------------------------------------------------------------------
# reading, through torchvision's classes


def _checksum_failures(fs: _FileSet, folder: Path) -> list[str]:
    """Files whose MD5 differs from the official one torchvision expects (CIFAR, SVHN)."""
    from torchvision.datasets.utils import check_integrity

    cls = _tv_class(fs)
    if fs.fmt == "cifar":
        sums = dict(cls.train_list + cls.test_list)
        sums[cls.meta["filename"]] = cls.meta["md5"]
    else:
        sums = {name: md5 for _, name, md5 in cls.split_list.values()}
    return [name for name in fs.files() if not check_integrity(str(folder / name), sums[name])]


def _read_with_torchvision(fs: _FileSet, root: Path, train: bool) -> tuple[np.ndarray, ...]:
    """One official split: images ``(N, C, H, W)`` uint8, labels ``(N,)`` int64, classes."""
    cls = _tv_class(fs)
    if fs.fmt == "svhn":
        ds = cls(str(root), split="train" if train else "test", download=False)
        images, labels = ds.data, ds.labels  # already (N, C, H, W) and 0..9
        classes: list[str] = []
    elif fs.fmt == "cifar":
        ds = cls(str(root), train=train, download=False)
        # torchvision turns the batches' (N, C, H, W) rows into HWC by a transpose (a view):
        # transposing back gives the contiguous array it read
        images = ds.data.transpose(0, 3, 1, 2)
        labels, classes = ds.targets, list(ds.classes)
    else:
        ds = cls(str(root), train=train, download=False)
        images, labels = ds.data.numpy()[:, None], ds.targets.numpy()  # (N, 1, 28, 28)
        classes = []
    images = np.ascontiguousarray(images, dtype=np.uint8)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    return images, labels, np.array(classes, dtype=object)


@lru_cache(maxsize=2)
def _read_official_splits(name: str, root: str) -> tuple[np.ndarray, ...]:
    """Both official splits as uint8 arrays, plus class names: (xtr, ytr, xte, yte, classes)."""
    info = get_dataset_info(name)
    fs = _FILESETS[name]
    rootp = Path(root)
    folder = rootp / fs.folder
    missing = _missing_files(fs, rootp)
    if missing:
        raise DatasetUnavailableError(_unavailable_message(info, fs, rootp, missing))
    files = fs.train_files
    try:
        if fs.fmt == "idx":
            _unpack_gz(fs, folder)
        xtr, ytr, classes = _read_with_torchvision(fs, rootp, train=True)
        files = fs.test_files
        xte, yte, _ = _read_with_torchvision(fs, rootp, train=False)
    except Exception as err:  # corrupt, truncated, foreign or unofficial files
        bad = _checksum_failures(fs, folder) if fs.fmt != "idx" else []
        if bad:
            raise DatasetUnavailableError(
                f"The {info.title} files {', '.join(bad)} in {folder} are not the official ones "
                f"(their MD5 sums differ from those torchvision checks); they are not read. "
                f"Delete them and fetch them again from {fs.url}, {_FALLBACK_HINT}."
            ) from None
        text = " ".join(str(err).split()) or type(err).__name__
        raise DatasetUnavailableError(
            f"Could not read {info.title} from {folder} ({', '.join(files)}): {text[:200]}. "
            f"Delete the files and fetch them again from {fs.url}, {_FALLBACK_HINT}."
        ) from None
    for labels in (ytr, yte):
        if labels.size and (labels.min() < 0 or labels.max() >= info.num_classes):
            raise DatasetUnavailableError(
                f"{info.title} labels in {folder} are outside 0..{info.num_classes - 1}; the "
                f"files are not the expected ones. Fetch them again from {fs.url}, "
                f"{_FALLBACK_HINT}."
            )
    if len(classes) != info.num_classes:
        classes = np.array(info.classes, dtype=object)
    return xtr, ytr, xte, yte, classes


register_cache_clearer(_read_official_splits.cache_clear)


def subset_order(seed: int, stream: int, total: int) -> np.ndarray:
    """The seeded order in which a split's subset is taken from ``total`` official images
    (stream 0: the official training split, 1: the official test split): a load takes the
    first ``n`` and sorts them, so reads walk the array in order. The hidden test split of an
    assignment (:mod:`playground.holdout`) takes its images from past the validation ones."""
    return np.random.default_rng(_sub_seed(seed, stream)).permutation(total)


def _build(req: _Request) -> _Arrays:
    info = get_dataset_info(req.name)
    fs = _FILESETS[req.name]
    xtr, ytr, xte, yte, classes = _read_official_splits(req.name, req.root)
    parts: list[Tensor] = []
    for stream, (x, y, count) in enumerate(((xtr, ytr, req.n_train), (xte, yte, req.n_val))):
        if count > len(y):
            raise DatasetError(
                f"{info.title} in {req.root} has {len(y):,} "
                f"{'training' if stream == 0 else 'test'} images; asked for {count:,}"
            )
        pick = np.sort(subset_order(req.seed, stream, len(y))[:count])
        images = torch.from_numpy(x[pick]).float().div_(255.0)  # (n, C, H, W) in [0, 1]
        parts += [_fit_images(images, req.input_shape), torch.from_numpy(y[pick])]
    if req.input_shape[0] == len(fs.mean):  # the set's usual statistics
        mean, std = fs.mean, fs.std
    elif req.input_shape[0] == 3:  # grey repeated to RGB: same statistics per channel
        mean, std = fs.mean * 3, fs.std * 3
    else:  # RGB made grey: measure on this training subset
        mean, std = None, None
    train_x, val_x, mean, std = _normalise(parts[0], parts[2], mean, std)
    return _Arrays(
        train_x, parts[1], val_x, parts[3], tuple(str(c) for c in classes), mean, std
    )


# ---------------------------------------------------------------------------------------------
# the registry entries

_IMAGE_SHAPES_GREY = ((1, 28, 28), (1, 16, 16), (1, 32, 32), (3, 32, 32))

_CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
_CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)
_FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

_SETS = (
    ("mnist", "MNIST", "70,000 hand-written digits, 28x28 grey: the classic first benchmark.",
     (1, 28, 28), _IMAGE_SHAPES_GREY, _DIGIT_NAMES, 60_000, 10_000, False,
     "LeCun et al. 1998, torchvision.datasets.MNIST"),
    ("fashion_mnist", "Fashion-MNIST", "70,000 photos of clothes (shirts, shoes, bags...), 28x28 "
     "grey: same size as MNIST and noticeably harder.",
     (1, 28, 28), _IMAGE_SHAPES_GREY, _FASHION_CLASSES, 60_000, 10_000, True,
     "Xiao, Rasul & Vollgraf 2017, torchvision.datasets.FashionMNIST"),
    ("cifar10", "CIFAR-10", "60,000 small colour photos of planes, cars, animals and ships, "
     "32x32: the standard test of a small CNN.",
     (3, 32, 32), _IMAGE_SHAPES_RGB, _CIFAR10_CLASSES, 50_000, 10_000, True,
     "Krizhevsky 2009, torchvision.datasets.CIFAR10"),
    ("cifar100", "CIFAR-100", "The CIFAR photos sorted into 100 finer classes, 500 training "
     "images each: much harder than CIFAR-10.",
     (3, 32, 32), _IMAGE_SHAPES_RGB, _CIFAR100_CLASSES, 50_000, 10_000, True,
     "Krizhevsky 2009, torchvision.datasets.CIFAR100"),
    ("svhn", "SVHN", "House numbers cut from Street View photos, 32x32 colour; the label is the "
     "digit in the centre.",
     (3, 32, 32), _IMAGE_SHAPES_RGB, _DIGIT_NAMES, 73_257, 26_032, False,
     "Netzer et al. 2011, torchvision.datasets.SVHN"),
)
for _name, _title, _text, _shape, _shapes, _classes, _ntr, _nte, _flip, _src in _SETS:
    _info = DatasetInfo(
        name=_name,
        title=_title,
        description=_text + " Downloaded once into the data directory.",
        kind="image",
        input_shape=_shape,
        input_shapes=_shapes,
        num_classes=len(_classes),
        classes=_classes,
        needs_download=True,
        n_train=10_000,
        n_val=2_000,
        max_train=_ntr,
        max_val=_nte,
        source=_src,
        hflip_safe=_flip,
    )
    _DATASETS.register(_name, DatasetEntry(_info, _build, ensure_files), help=_info.description)
