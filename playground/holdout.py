"""The hidden test split: the examples an assignment's private score is measured on.

Kaggle InClass (and every Kaggle competition) ranks on two held-out sets: a public score that
contestants see while they work and a private score on data nobody has seen, revealed when
the competition closes, so that tuning against the public number does not pay. Here the
public score is the validation accuracy training already reports; this module makes the third
split, disjoint from training and validation, for the private score
(:mod:`playground.assignments`).

Conventions
-----------
- A test split sits beside the training and validation splits that
  :func:`playground.data.load_dataset` makes for the same ``data_seed``, ``input_shape``,
  ``n_train``, ``n_val`` and ``noise``, and is drawn by its own ``test_seed`` (an assignment
  keeps a random one on the server) and size ``n_test``. The same arguments give identical
  tensors.
- Generated sets (``shapes`` and the point sets): drawn with the same recipe as the other
  splits, from random stream :data:`TEST_STREAM` of ``test_seed``. Loads use streams 0
  (training) and 1 (validation) of ``data_seed`` (``numpy.random.SeedSequence`` entropy
  ``[seed, sign, stream]``), so no seed a student picks reproduces the test examples.
- ``digits``: the images neither the training nor the validation split of ``data_seed`` uses;
  ``n_test`` of them, picked by ``test_seed``. At most ``1,797 - n_train - n_val``.
- torchvision sets: training images come from the official training split and validation
  images from the official test split, in a seeded order of which a load takes the first
  ``n_val``; the test split takes ``n_test`` images from past those, picked by ``test_seed``.
  Files are read as :mod:`playground.datasets_torchvision` reads them; nothing is downloaded
  unless ``allow_download``.
- Inputs are standardised with the statistics the training split was standardised with
  (``DataSplit.mean``/``std``), with the same float32 arithmetic, so a network sees test
  inputs exactly as it saw validation inputs. Point sets are not standardised.
- :class:`HoldoutSplit` tensors never leave the server: the assignment module evaluates a
  model on them and returns accuracies only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from playground.data import (
    _DIGITS_TOTAL,
    _POINT_GENERATORS,
    _SHAPE_CLASSES,
    MAX_GENERATED,
    DatasetError,
    DatasetInfo,
    _balanced_labels,
    _digits_source,
    _digits_split,
    _fit_images,
    _make_request,
    _render_shapes,
    _Request,
    _sub_seed,
    _torch_gen,
    get_dataset_info,
    load_dataset,
    register_cache_clearer,
)

__all__ = ["MAX_TEST", "MAX_TEST_BYTES", "TEST_STREAM", "HoldoutSplit", "has_test_split",
           "holdout_datasets", "load_test_split", "max_test"]

TEST_STREAM = 2  # train and validation use streams 0 and 1 (playground.data._sub_seed)
MAX_TEST = 20_000  # most test examples: one evaluation per submission stays quick on a CPU
MAX_TEST_BYTES = 256 * 2**20  # float32 bytes of one test split's inputs


@dataclass(frozen=True)
class HoldoutSplit:
    """A hidden test split, standardised like its training data.

    ``x``: float32 ``(N, C, H, W)`` (images) or ``(N, 2)`` (points); ``y``: int64 ``(N,)``.
    ``indices``: where the examples come from, sorted: positions among the 1,797 ``digits``
    images, or in the official test split of a torchvision set; ``None`` for generated sets.
    """

    x: Tensor
    y: Tensor
    classes: list[str]
    info: DatasetInfo
    input_shape: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    test_seed: int
    indices: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.y.shape[0])


def _kind(name: str) -> str | None:
    """How the test split of ``name`` is made: shapes, digits, points, torchvision, or None."""
    if name == "shapes":
        return "shapes"
    if name == "digits":
        return "digits"
    if name in _POINT_GENERATORS:
        return "points"
    from playground.datasets_torchvision import _FILESETS

    return "torchvision" if name in _FILESETS else None


def has_test_split(name: str) -> bool:
    """Whether data set ``name`` can hold back a test split (every registered set today)."""
    get_dataset_info(name)
    return _kind(name) is not None


def holdout_datasets() -> list[str]:
    """The registered data sets that can hold back a test split, in registry order."""
    from playground.data import DATASETS

    return [name for name in DATASETS if _kind(name) is not None]


def max_test(name: str, *, n_train: int | None = None, n_val: int | None = None) -> int:
    """The most test examples ``name`` can hold back beside ``n_train``/``n_val`` (``None``:
    the set's defaults), before :data:`MAX_TEST` and the byte cap. For a torchvision set this
    is the official test split's size as the registry states it."""
    info = get_dataset_info(name)
    tr = info.n_train if n_train is None else int(n_train)
    va = info.n_val if n_val is None else int(n_val)
    kind = _kind(name)
    if kind == "digits":
        return max(0, _DIGITS_TOTAL - tr - va)
    if kind == "torchvision":
        return max(0, info.max_val - va)
    if kind in ("shapes", "points"):
        return MAX_GENERATED
    return 0


def _check(info: DatasetInfo, req: _Request, n_test: int) -> None:
    kind = _kind(info.name)
    if kind is None:
        raise DatasetError(f"{info.title} has no hidden test split; assignments can use "
                           f"{', '.join(holdout_datasets())}")
    most = min(MAX_TEST, max_test(info.name, n_train=req.n_train, n_val=req.n_val))
    if kind == "digits" and most < 1:
        raise DatasetError(
            f"Digits has {_DIGITS_TOTAL:,} images and the training and validation splits take "
            f"{req.n_train:,} + {req.n_val:,}, which leaves none for a test split; use fewer "
            "training examples (e.g. 1,077 training, 360 validation, 360 test)")
    if not 1 <= n_test <= most:
        raise DatasetError(f"{info.title} can hold back 1 to {most:,} test examples beside "
                           f"{req.n_train:,} training and {req.n_val:,} validation examples; "
                           f"asked for {n_test:,}")
    nbytes = n_test * math.prod(req.input_shape) * 4
    if nbytes > MAX_TEST_BYTES:
        raise DatasetError(f"{n_test:,} test examples of shape {req.input_shape} take "
                           f"{nbytes / 2**20:.0f} MiB; at most {MAX_TEST_BYTES // 2**20} MiB: "
                           "use fewer test examples or a smaller input")


def _pick(rest: np.ndarray, n_test: int, test_seed: int) -> np.ndarray:
    """``n_test`` of the candidate indices ``rest``, picked by ``test_seed``, sorted."""
    order = np.random.default_rng(_sub_seed(test_seed, TEST_STREAM)).permutation(len(rest))
    return np.sort(rest[order[:n_test]])


def _standardise(x: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """``(x - mean) / std`` per channel, the float32 arithmetic of ``data._normalise``."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)


@lru_cache(maxsize=4)
def _build(req: _Request, n_test: int, test_seed: int
           ) -> tuple[Tensor, Tensor, tuple[str, ...], tuple[float, ...], tuple[float, ...],
                      np.ndarray | None]:
    """CPU tensors of one test split (cached; callers get copies)."""
    info = get_dataset_info(req.name)
    kind = _kind(req.name)
    if kind == "points":
        rng = np.random.default_rng(_sub_seed(test_seed, TEST_STREAM))
        labels = rng.permutation(np.arange(n_test, dtype=np.int64) % info.num_classes)
        xy = _POINT_GENERATORS[req.name](labels, info.num_classes, rng)
        xy = xy + rng.normal(0.0, req.noise or 0.0, xy.shape)  # as data._build_points
        return (torch.from_numpy(xy.astype(np.float32)), torch.from_numpy(labels),
                info.classes, (), (), None)
    # the statistics the training split was standardised with (a cached load)
    split = load_dataset(req.name, seed=req.seed, input_shape=req.input_shape,
                         n_train=req.n_train, n_val=req.n_val, root=req.root or None,
                         allow_download=False)
    indices: np.ndarray | None = None
    if kind == "shapes":
        gen = _torch_gen(test_seed, TEST_STREAM)
        y = _balanced_labels(n_test, len(_SHAPE_CLASSES), gen)
        x = _render_shapes(y, req.input_shape, gen)
    elif kind == "digits":
        images, target = _digits_source()
        train_idx, val_idx = _digits_split(req.seed, req.n_train, req.n_val)
        rest = np.setdiff1d(np.arange(len(target)), np.concatenate([train_idx, val_idx]))
        indices = _pick(rest, n_test, test_seed)
        x = _fit_images(torch.from_numpy(images[indices]).unsqueeze(1), req.input_shape)
        y = torch.from_numpy(target[indices])
    else:
        from playground.datasets_torchvision import _read_official_splits, subset_order

        _, _, xte, yte, _ = _read_official_splits(req.name, req.root)
        if req.n_val + n_test > len(yte):
            raise DatasetError(
                f"{info.title} in {req.root} has {len(yte):,} official test images: not "
                f"enough for {req.n_val:,} validation and {n_test:,} test examples")
        rest = subset_order(req.seed, 1, len(yte))[req.n_val:]  # past the validation images
        indices = _pick(rest, n_test, test_seed)
        images = torch.from_numpy(xte[indices]).float().div_(255.0)  # (n, C, H, W) in [0, 1]
        x = _fit_images(images, req.input_shape)
        y = torch.from_numpy(yte[indices])
    x = _standardise(x.clone(), split.mean, split.std)
    return x, y, tuple(split.classes), split.mean, split.std, indices


register_cache_clearer(_build.cache_clear)


def load_test_split(
    name: str,
    *,
    test_seed: int,
    n_test: int,
    data_seed: int = 0,
    input_shape: tuple[int, ...] | list[int] | None = None,
    n_train: int | None = None,
    n_val: int | None = None,
    noise: float | None = None,
    root: str | Path | None = None,
    allow_download: bool = False,
) -> HoldoutSplit:
    """The hidden test split of data set ``name`` (on the CPU).

    ``data_seed``, ``input_shape``, ``n_train``, ``n_val``, ``noise`` and ``root`` mean what
    they mean to :func:`playground.data.load_dataset` and name the training and validation
    splits the test split must stay apart from; ``test_seed`` and ``n_test`` draw it. Problems
    (a set that cannot hold back enough examples, missing files) raise one
    :class:`~playground.data.DatasetError` line.
    """
    info = get_dataset_info(name)
    req = _make_request(info, int(data_seed), input_shape, n_train, n_val, root, noise)
    _check(info, req, int(n_test))
    if allow_download and info.needs_download:
        from playground.data import ensure_dataset

        ensure_dataset(name, root=req.root)
    x, y, classes, mean, std, indices = _build(req, int(n_test), int(test_seed))
    return HoldoutSplit(x.clone(), y.clone(), list(classes), info, req.input_shape, mean, std,
                     int(test_seed), None if indices is None else indices.copy())
