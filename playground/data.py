"""Small, fast data sets for the playground, as a name -> builder registry.

Every set loads as plain tensors (no ``DataLoader``): float32 inputs and int64 labels, already
normalised, small enough to sit in memory and be sliced with :func:`iterate_minibatches`.

Built in (no download):

- ``shapes`` (the default): ten procedurally drawn shapes (circle, square, triangle, cross,
  plus, ring, horizontal/vertical stripes, diagonal line, checkerboard) at random places,
  sizes, angles and colours, with pixel noise. Generated here from anti-aliased signed
  distances, after Inigo Quilez's "2D distance functions".
- ``digits``: 1,797 hand-written 8x8 digits (UCI "Optical Recognition of Handwritten Digits"),
  bundled with scikit-learn as ``load_digits``, resized.
- ``spirals`` / ``spirals3`` (two / three arms), ``circles`` and ``xor``: TensorFlow
  Playground's ``classifySpiralData``, ``classifyCircleData`` and ``classifyXORData``;
  ``moons``: scikit-learn's ``make_moons`` formula. Generated here.

Read by torchvision's own dataset classes from the files it downloads (registered by
:mod:`playground.datasets_torchvision`, which says how the files are read, checked and
downloaded):

- ``mnist`` (LeCun et al. 1998) and ``fashion_mnist`` (Xiao et al. 2017): 70,000 grey 28x28.
- ``cifar10`` / ``cifar100`` (Krizhevsky 2009): 60,000 colour 32x32, 10 / 100 classes.
- ``svhn`` (Netzer et al. 2011): 99,289 colour 32x32 house-number crops.

Image sets have input shape ``(C, H, W)``; any ``C`` in (1, 3) and ``H, W`` in 8..128 can be
asked for (grey is repeated to RGB, RGB becomes grey with ITU-R BT.601 luma weights as PIL's
``"L"`` mode does, sizes change by bilinear interpolation with anti-aliasing). Point sets have
input shape ``(2,)``: tensors of shape ``(N, 2)``, coordinates roughly within [-1.2, 1.2].

The torchvision sets live in ``root`` (default: ``get_settings().data_dir``) in exactly the
layout torchvision downloads. They are downloaded only with ``allow_download`` (or by
:func:`ensure_dataset`), and anything that goes wrong becomes a
:class:`DatasetUnavailableError` whose one-line message says which files are expected where
and where to get them.

Splits and normalisation: generated sets draw train and validation from separate random
streams of one seed; ``digits`` is split stratified by seed; the torchvision sets take a seeded
subset of the official training split for training and of the official test split for
validation. A third split, held back for the private score of an assignment, comes from
:mod:`playground.holdout` (its own random stream, disjoint from both). Inputs are
standardised per channel: torchvision sets with their usual published
mean/std (channel conversions adjust them), the others with statistics of their own training
split. ``DataSplit.mean``/``std`` record what was used; :func:`denormalize` undoes it.

Loads are cached in-process (least recently used, bounded by ``CACHE_BYTES``), so a second
load with the same arguments is instant; every call returns its own copies, so a caller may
modify what it gets without affecting the next caller.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from playground.errors import PlaygroundError
from playground.registry import Registry
from playground.settings import get_settings

__all__ = [
    "DATASETS",
    "DataSplit",
    "DatasetEntry",
    "DatasetError",
    "DatasetInfo",
    "DatasetUnavailableError",
    "augment",
    "clear_cache",
    "denormalize",
    "ensure_dataset",
    "get_dataset_info",
    "iterate_minibatches",
    "list_datasets",
    "load_dataset",
]

Kind = Literal["image", "points"]

MIN_SIDE = 8  # smallest image height/width a set can be resized to
MAX_SIDE = 128  # largest; bigger inputs do not fit the "small and fast" promise
MAX_BYTES = 1 << 30  # the float32 tensors of one load (train + val) stay below 1 GiB
CACHE_BYTES = 2 << 30  # loads kept in memory for instant reloads, in bytes of tensors
MAX_GENERATED = 100_000  # most examples per split a generated set will draw
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's RGB -> "L" conversion
_FALLBACK_HINT = "or use the built-in `shapes` or `digits` sets, which need no download"


class DatasetError(PlaygroundError):
    """A data set request that cannot be served (bad input shape, too many examples...)."""


class DatasetUnavailableError(DatasetError):
    """A downloadable data set whose files are missing, unreadable or could not be fetched."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a data set is, known without loading it (for menus, validation and share links)."""

    name: str  # registry key; configs and URLs store this
    title: str  # short label for menus
    description: str  # two or three sentences for students
    kind: Kind  # "image" -> (N, C, H, W) inputs, "points" -> (N, 2)
    input_shape: tuple[int, ...]  # default input shape: (C, H, W), or (2,) for points
    input_shapes: tuple[tuple[int, ...], ...]  # shapes offered in menus, default first
    num_classes: int
    classes: tuple[str, ...]  # class names, index = label
    needs_download: bool  # True for torchvision sets: files must be in the data directory
    n_train: int  # default number of training examples
    n_val: int  # default number of validation examples
    max_train: int  # most training examples available
    max_val: int  # most validation examples available
    source: str  # where the data comes from, for a "source" line in the UI
    hflip_safe: bool = False  # a horizontal flip keeps the label, so flip augmentation is fine
    default_noise: float | None = None  # points: std of the coordinate noise; None = no knob

    @property
    def channels(self) -> tuple[int, ...]:
        """Channel counts :func:`load_dataset` accepts (empty for point sets)."""
        return (1, 3) if self.kind == "image" else ()


@dataclass(frozen=True)
class DataSplit:
    """One loaded data set: train and validation tensors plus what is needed to read them.

    ``train_x``/``val_x`` are float32 ``(N, C, H, W)`` (images) or ``(N, 2)`` (points), already
    normalised with ``mean``/``std`` (per channel; see :func:`denormalize`); ``train_y``/``val_y``
    are int64 ``(N,)`` labels in ``0..num_classes-1``.
    """

    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    classes: list[str]
    input_shape: tuple[int, ...]
    info: DatasetInfo
    seed: int = 0
    mean: tuple[float, ...] = ()  # per-channel mean subtracted (images); () for points
    std: tuple[float, ...] = ()  # per-channel std divided by (images); () for points

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def n_train(self) -> int:
        return int(self.train_y.shape[0])

    @property
    def n_val(self) -> int:
        return int(self.val_y.shape[0])

    @property
    def device(self) -> torch.device:
        return self.train_x.device

    def to(self, device: str | torch.device) -> DataSplit:
        """This split with all four tensors on ``device`` (the same tensors if already there)."""
        return _replace_tensors(self, lambda t: t.to(device))


@dataclass(frozen=True)
class _Request:
    """A canonical load request: every default resolved, so it is a good cache key."""

    name: str
    seed: int
    input_shape: tuple[int, ...]
    n_train: int
    n_val: int
    root: str  # "" for sets that read no files
    noise: float | None


@dataclass(frozen=True)
class _Arrays:
    """What a builder returns: CPU tensors and the normalisation it applied."""

    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()


@dataclass(frozen=True)
class DatasetEntry:
    """A registry entry: the metadata, the function that builds the tensors and, for sets read
    from files, the one that fetches missing files into a root folder (raising
    :class:`DatasetUnavailableError` when it cannot)."""

    info: DatasetInfo
    build: Callable[[_Request], _Arrays] = field(repr=False)
    fetch: Callable[[DatasetInfo, Path], None] | None = field(default=None, repr=False)


DATASETS: Registry[DatasetEntry] = Registry("data set")

# ---------------------------------------------------------------------------------------------
# public API


def list_datasets() -> list[DatasetInfo]:
    """Metadata of every registered set, in registration order (built-ins first)."""
    return [DATASETS.get(name).info for name in DATASETS]


def get_dataset_info(name: str) -> DatasetInfo:
    """Metadata of one set; raises ``UnknownNameError`` (a ``PlaygroundError``) if unknown."""
    return DATASETS.get(name).info


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    input_shape: tuple[int, ...] | list[int] | None = None,
    n_train: int | None = None,
    n_val: int | None = None,
    root: str | Path | None = None,
    device: str | torch.device = "cpu",
    allow_download: bool = True,
    noise: float | None = None,
) -> DataSplit:
    """Load (or generate) a data set as tensors on ``device``.

    ``input_shape`` defaults to the set's ``info.input_shape``; ``n_train``/``n_val`` to
    ``info.n_train``/``info.n_val`` (a subset drawn by ``seed`` for the torchvision sets).
    ``root`` is where torchvision sets live (default: settings ``data_dir``). A missing
    torchvision set is downloaded only when ``allow_download`` is true; tests pass False.
    ``noise`` is the coordinate-noise std of the point sets (default ``info.default_noise``).

    The same arguments give identical tensors. Results are cached in-process, and every call
    returns its own copies, so callers may modify them freely.
    """
    entry = DATASETS.get(name)
    info = entry.info
    request = _make_request(info, seed, input_shape, n_train, n_val, root, noise)
    if entry.fetch is not None and allow_download:
        entry.fetch(info, Path(request.root))
    arrays = _load_cpu(request)
    try:
        dev = torch.device(device)
        # clone on CPU so nobody can corrupt the cache; .to() on another device copies anyway
        move = (lambda t: t.clone()) if dev.type == "cpu" else (lambda t: t.to(dev))
        tensors = [move(t) for t in (arrays.train_x, arrays.train_y, arrays.val_x, arrays.val_y)]
    except (RuntimeError, AssertionError) as err:  # no such device, out of device memory
        raise DatasetError(f"Could not put {info.title} on device {device!r}: {err}") from None
    return DataSplit(
        *tensors,
        classes=list(arrays.classes),
        input_shape=request.input_shape,
        info=info,
        seed=request.seed,
        mean=arrays.mean,
        std=arrays.std,
    )


def ensure_dataset(name: str, *, root: str | Path | None = None) -> None:
    """Make sure data set ``name`` can be loaded, without loading it.

    For a set read from files (``info.needs_download``): download whatever is missing into
    ``root`` (default: settings ``data_dir``), or raise :class:`DatasetUnavailableError` with
    a one-line message, within about two seconds when offline. Built-in sets need nothing.
    Meant for callers that should fail before starting work (the CLI before it records a run).
    """
    entry = DATASETS.get(name)
    if entry.fetch is not None:
        where = root if root is not None else get_settings().data_dir
        entry.fetch(entry.info, Path(where).expanduser())


def clear_cache() -> None:
    """Forget every cached load (frees memory; the next load regenerates or rereads)."""
    _CACHE.clear()
    for clear in _CACHE_CLEARERS:
        clear()


def register_cache_clearer(clear: Callable[[], None]) -> None:
    """Have :func:`clear_cache` also call ``clear`` (for caches kept by data set modules)."""
    _CACHE_CLEARERS.append(clear)


def denormalize(x: Tensor, split: DataSplit) -> Tensor:
    """Undo the normalisation of image inputs ``(B, C, H, W)``: values back in [0, 1].

    For showing examples; point sets are returned unchanged.
    """
    if split.info.kind != "image" or not split.mean:
        return x
    mean = torch.tensor(split.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(split.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x * std + mean).clamp(0.0, 1.0)


def augment(
    x: Tensor,
    *,
    crop_padding: int = 4,
    hflip: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random crop with zero padding and random horizontal flip of a batch ``(B, C, H, W)``.

    The standard CIFAR recipe (He et al. 2016, section 4.2). Padding is zero in normalised
    units, i.e. the data set's mean colour. Vectorised: one gather for the whole batch, on the
    batch's device. Random numbers come from ``generator`` (on any device) so a seeded
    generator gives the same result every time; ``x`` itself is not modified.
    """
    if x.dim() != 4:
        raise DatasetError(
            f"augmentation works on image batches of shape (B, C, H, W); got {tuple(x.shape)}"
        )
    if crop_padding < 0:
        raise DatasetError(f"crop padding must be 0 or more pixels; got {crop_padding}")
    b, _, h, w = x.shape
    gen_device = generator.device if generator is not None else x.device
    out = x
    if crop_padding > 0 and b > 0:
        p = crop_padding
        padded = F.pad(x, (p, p, p, p))  # (B, C, H+2p, W+2p), zeros outside
        off = torch.randint(0, 2 * p + 1, (2, b), generator=generator, device=gen_device)
        off = off.to(x.device)
        rows = off[0, :, None] + torch.arange(h, device=x.device)  # (B, H)
        cols = off[1, :, None] + torch.arange(w, device=x.device)  # (B, W)
        batch = torch.arange(b, device=x.device)[:, None, None]
        # advanced indices around a slice put their dims first: (B, H, W, C)
        out = padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if hflip and b > 0:
        flip = torch.rand(b, generator=generator, device=gen_device).to(x.device) < 0.5
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    return out.contiguous() if out is not x else x.clone()


def iterate_minibatches(
    x: Tensor,
    y: Tensor,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``(x_batch, y_batch)`` slices of one epoch, shuffled by ``generator``.

    The permutation is drawn on the generator's device and moved to ``x``'s device, so the
    indexing happens where the data lives and the order only depends on the generator's seed.
    """
    n = int(x.shape[0])
    if int(y.shape[0]) != n:
        raise DatasetError(f"inputs and labels differ in length ({n} vs {int(y.shape[0])})")
    if batch_size < 1:
        raise DatasetError(f"batch size must be at least 1; got {batch_size}")
    if shuffle:
        gen_device = generator.device if generator is not None else torch.device("cpu")
        order = torch.randperm(n, generator=generator, device=gen_device).to(x.device)
    else:
        order = torch.arange(n, device=x.device)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        yield x[idx], y[idx.to(y.device)]


# ---------------------------------------------------------------------------------------------
# request checking and the cache


def _make_request(
    info: DatasetInfo,
    seed: int,
    input_shape: tuple[int, ...] | list[int] | None,
    n_train: int | None,
    n_val: int | None,
    root: str | Path | None,
    noise: float | None,
) -> _Request:
    shape = tuple(int(s) for s in (input_shape if input_shape is not None else info.input_shape))
    if info.kind == "points":
        if shape != (2,):
            raise DatasetError(f"{info.title} points have input shape (2,); got {shape}")
    else:
        ok = (
            len(shape) == 3
            and shape[0] in info.channels
            and all(MIN_SIDE <= s <= MAX_SIDE for s in shape[1:])
        )
        if not ok:
            raise DatasetError(
                f"{info.title} can be loaded as (C, H, W) with C = 1 or 3 and H, W between "
                f"{MIN_SIDE} and {MAX_SIDE}; got {shape}"
            )
    n_tr = info.n_train if n_train is None else int(n_train)
    n_va = info.n_val if n_val is None else int(n_val)
    if not 1 <= n_tr <= info.max_train:
        raise DatasetError(
            f"{info.title} has 1 to {info.max_train:,} training examples; asked for {n_tr:,}"
        )
    if not 1 <= n_va <= info.max_val:
        raise DatasetError(
            f"{info.title} has 1 to {info.max_val:,} validation examples; asked for {n_va:,}"
        )
    if info.name == "digits" and (n_tr + n_va > _DIGITS_TOTAL or min(n_tr, n_va) < 10):
        # a stratified split needs at least one image of each digit on both sides
        raise DatasetError(
            f"Digits has {_DIGITS_TOTAL:,} images in all, and each split needs at least 10; "
            f"asked for {n_tr:,} + {n_va:,}"
        )
    size_bytes = (n_tr + n_va) * math.prod(shape) * 4
    if size_bytes > MAX_BYTES:
        raise DatasetError(
            f"{n_tr + n_va:,} examples of shape {shape} need {size_bytes / 2**30:.1f} GiB; "
            f"the limit is {MAX_BYTES / 2**30:.0f} GiB: use fewer examples or a smaller size"
        )
    if noise is not None and info.default_noise is None:
        raise DatasetError(f"{info.title} has no noise setting")
    if noise is not None and not 0.0 <= float(noise) <= 1.0:
        raise DatasetError(f"noise must be between 0 and 1; got {noise}")
    level = None
    if info.default_noise is not None:
        level = float(info.default_noise if noise is None else noise)
    where = ""
    if info.needs_download:
        where = str(Path(root if root is not None else get_settings().data_dir).expanduser())
    return _Request(info.name, int(seed), shape, n_tr, n_va, where, level)


class _TensorCache:
    """A least-recently-used cache bounded by the bytes of the tensors it holds.

    ``functools.lru_cache`` counts entries, but one entry here may be 10 kB (points) or 1 GiB
    (CIFAR at 64x64), so the budget is in bytes. The newest entry is always kept.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[_Request, _Arrays] = OrderedDict()
        self._lock = threading.Lock()  # Streamlit serves sessions from several threads

    def get(self, request: _Request, build: Callable[[_Request], _Arrays]) -> _Arrays:
        with self._lock:
            if request in self._items:
                self._items.move_to_end(request)
                return self._items[request]
        value = build(request)  # outside the lock: building may take seconds
        with self._lock:
            self._items[request] = value
            self._items.move_to_end(request)
            while len(self._items) > 1 and self.nbytes() > self.max_bytes:
                self._items.popitem(last=False)
        return value

    def nbytes(self) -> int:
        return sum(
            t.numel() * t.element_size()
            for a in self._items.values()
            for t in (a.train_x, a.train_y, a.val_x, a.val_y)
        )

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_CACHE = _TensorCache(CACHE_BYTES)
_CACHE_CLEARERS: list[Callable[[], None]] = []  # lru caches of file readers, see clear_cache


def _load_cpu(request: _Request) -> _Arrays:
    return _CACHE.get(request, lambda r: DATASETS.get(r.name).build(r))


def _replace_tensors(split: DataSplit, fn: Callable[[Tensor], Tensor]) -> DataSplit:
    return DataSplit(
        train_x=fn(split.train_x),
        train_y=fn(split.train_y),
        val_x=fn(split.val_x),
        val_y=fn(split.val_y),
        classes=list(split.classes),
        input_shape=split.input_shape,
        info=split.info,
        seed=split.seed,
        mean=split.mean,
        std=split.std,
    )


def _sub_seed(seed: int, stream: int) -> int:
    """Independent 63-bit seeds for the train and val streams of one user seed."""
    state = np.random.SeedSequence([abs(int(seed)), int(seed < 0), stream]).generate_state(2)
    return ((int(state[0]) << 32) | int(state[1])) & (2**63 - 1)


def _torch_gen(seed: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(_sub_seed(seed, stream))


def _balanced_labels(n: int, num_classes: int, gen: torch.Generator) -> Tensor:
    """``n`` labels with every class as equally often as possible, in random order."""
    labels = torch.arange(n) % num_classes
    return labels[torch.randperm(n, generator=gen)]


def _normalise(
    train: Tensor,
    val: Tensor,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
) -> tuple[Tensor, Tensor, tuple[float, ...], tuple[float, ...]]:
    """Per-channel standardisation; statistics from ``train`` unless given (no val leakage)."""
    if mean is None or std is None:
        std_t, mean_t = torch.std_mean(train, dim=(0, 2, 3))
        mean = tuple(float(m) for m in mean_t)
        std = tuple(max(float(s), 1e-6) for s in std_t)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    # in place: the builders own these freshly made tensors
    return train.sub_(m).div_(s), val.sub_(m).div_(s), mean, std


def _fit_images(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Convert ``(N, C, H, W)`` images in [0, 1] to ``shape`` = (C', H', W')."""
    c, h, w = shape
    if x.shape[1] == 3 and c == 1:
        luma = torch.tensor(_LUMA, dtype=x.dtype).view(1, 3, 1, 1)
        x = (x * luma).sum(1, keepdim=True)
    elif x.shape[1] == 1 and c == 3:
        x = x.expand(-1, 3, -1, -1)
    if tuple(x.shape[2:]) != (h, w) and x.shape[0] > 0:
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return x.contiguous()


# ---------------------------------------------------------------------------------------------
# shapes: procedurally drawn images

_SHAPE_CLASSES = (
    "circle",
    "square",
    "triangle",
    "cross",
    "plus",
    "ring",
    "horizontal stripes",
    "vertical stripes",
    "diagonal line",
    "checkerboard",
)
_RENDER_PIXELS = 1 << 17  # pixels per rendering chunk: ~0.5 MB temporaries, cache-friendly


def _box(u: Tensor, v: Tensor, half: Tensor) -> Tensor:
    return torch.maximum(u.abs(), v.abs()) - half


def _bars(a: Tensor, b: Tensor, s: Tensor, t: Tensor) -> Tensor:
    """Two crossing bars along the a and b axes: half-length s, half-width t."""
    return torch.minimum(
        torch.maximum(a.abs() - s, b.abs() - t), torch.maximum(a.abs() - t, b.abs() - s)
    )


def _shape_distance(k: int, u: Tensor, v: Tensor, p: dict[str, Tensor]) -> Tensor:
    """Signed distance in pixels (negative inside) of shape class ``k`` at coordinates u, v.

    Formulas after Inigo Quilez's 2D distance functions; the stripes and checkerboard use
    ``-cos(...) * period / (2 pi)``, a smooth function whose slope at the edges is 1 pixel per
    pixel, so the same anti-aliasing works for every class.
    """
    s, t, period, phase, flip = p["s"], p["t"], p["period"], p["phase"], p["flip"]
    if k == 0:  # circle
        return torch.sqrt(u * u + v * v) - s
    if k == 1:  # square
        return _box(u, v, 0.8 * s)
    if k == 2:  # equilateral triangle, apex up (y grows downwards), circumradius 1.1 s
        c = math.sqrt(3) / 2
        edges = torch.maximum(torch.maximum(v, c * u - 0.5 * v), -c * u - 0.5 * v)
        return edges - 0.55 * s
    if k == 3:  # diagonal cross (X)
        r2 = math.sqrt(0.5)
        return _bars((u + v) * r2, (u - v) * r2, s, t)
    if k == 4:  # plus
        return _bars(u, v, s, t)
    if k == 5:  # ring
        return (torch.sqrt(u * u + v * v) - 0.75 * s).abs() - t
    if k in (6, 7):  # horizontal / vertical stripes inside a square patch
        along = v if k == 6 else u
        stripes = -torch.cos(2 * math.pi * (along / period + phase)) * period / (2 * math.pi)
        return torch.maximum(_box(u, v, 0.8 * s), stripes)
    if k == 8:  # one diagonal line, "/" or "\"
        line = (flip * u - v).abs() * math.sqrt(0.5) - t
        return torch.maximum(_box(u, v, 0.75 * s), line)
    # k == 9: checkerboard patch, cells of half the period
    cell = 0.5 * period
    checker = -torch.cos(math.pi * u / cell) * torch.cos(math.pi * v / cell) * cell / math.pi
    return torch.maximum(_box(u, v, 0.8 * s), checker)


def _contrasting_colours(n: int, c: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Background and foreground colours ``(n, c)`` whose luma differs by at least ~0.3."""
    luma = torch.tensor(_LUMA if c == 3 else (1.0,))
    bg = torch.rand(n, c, generator=gen)
    fg = torch.rand(n, c, generator=gen)
    diff = (fg - bg) @ luma
    # too little contrast: push every channel 0.45 towards the far end of the luma range
    away = torch.where((bg @ luma) < 0.5, 0.45, -0.45)[:, None]
    fg = torch.where((diff.abs() < 0.3)[:, None], (bg + away).clamp(0, 1), fg)
    return bg, fg


def _render_shapes(labels: Tensor, shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
    """Draw one image per label: ``(N, C, H, W)`` floats in [0, 1]."""
    c, h, w = shape
    n = labels.shape[0]
    side = float(min(h, w))

    def uniform(lo: float, hi: float) -> Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    # every per-image parameter is drawn up front, in image order
    s = uniform(0.2, 0.38) * side  # half-extent of the object, pixels
    params = {
        "s": s,
        "cx": s + torch.rand(n, generator=gen) * (w - 2 * s),  # centre, inside the frame
        "cy": s + torch.rand(n, generator=gen) * (h - 2 * s),
        "angle": uniform(-0.35, 0.35),  # +-20 degrees
        "t": torch.clamp(uniform(0.16, 0.26) * s, min=0.7),  # bar half-width, pixels
        "period": torch.clamp(uniform(0.6, 0.85) * s, min=3.0),  # stripe period, pixels
        "phase": torch.rand(n, generator=gen),
        "flip": torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0),
        "grad_amp": uniform(0.0, 0.25),  # a soft background gradient
        "grad_dir": uniform(0.0, 2 * math.pi),
        "sigma": uniform(0.02, 0.12),  # pixel noise std
    }
    bg, fg = _contrasting_colours(n, c, gen)

    ys = torch.arange(h, dtype=torch.float32).view(1, h, 1) + 0.5  # pixel centres
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, w) + 0.5
    out = torch.empty(n, c, h, w)
    # class by class, in chunks small enough that temporaries stay in cache
    chunk = max(1, _RENDER_PIXELS // (h * w))
    for k in range(len(_SHAPE_CLASSES)):
        members = (labels == k).nonzero().squeeze(1)
        for start in range(0, members.numel(), chunk):
            idx = members[start : start + chunk]
            m = idx.numel()
            p = {key: val[idx].view(m, 1, 1) for key, val in params.items()}
            dx, dy = xs - p["cx"], ys - p["cy"]  # (m, 1, W), (m, H, 1)
            cos, sin = torch.cos(p["angle"]), torch.sin(p["angle"])
            u = cos * dx + sin * dy  # (m, H, W) coordinates in the object's frame
            v = cos * dy - sin * dx
            # 1-pixel anti-aliasing: coverage goes 1 -> 0 as the distance goes -0.5 -> 0.5
            mask = (0.5 - _shape_distance(k, u, v, p)).clamp_(0.0, 1.0).unsqueeze(1)
            ramp = (dx * torch.cos(p["grad_dir"]) + dy * torch.sin(p["grad_dir"])) / side
            back = bg[idx].view(m, c, 1, 1) + (p["grad_amp"] * ramp).unsqueeze(1)  # (m,C,H,W)
            img = back.add_(mask * (fg[idx].view(m, c, 1, 1) - back))
            noise = torch.randn(m, c, h, w, generator=gen).mul_(p["sigma"].unsqueeze(1))
            out[idx] = img.add_(noise).clamp_(0.0, 1.0)
    return out


def _build_shapes(req: _Request) -> _Arrays:
    num = len(_SHAPE_CLASSES)
    split_x = []
    split_y = []
    for stream, count in ((0, req.n_train), (1, req.n_val)):
        gen = _torch_gen(req.seed, stream)
        labels = _balanced_labels(count, num, gen)
        split_x.append(_render_shapes(labels, req.input_shape, gen))
        split_y.append(labels)
    train_x, val_x, mean, std = _normalise(split_x[0], split_x[1])
    return _Arrays(train_x, split_y[0], val_x, split_y[1], _SHAPE_CLASSES, mean, std)


# ---------------------------------------------------------------------------------------------
# digits: scikit-learn's bundled 8x8 digits

_DIGITS_TOTAL = 1797


@lru_cache(maxsize=1)
def _digits_source() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # imported late: sklearn takes ~1 s to import

    bunch = load_digits()
    return bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int64)  # 0..16 -> 0..1


register_cache_clearer(_digits_source.cache_clear)


def _digits_split(seed: int, n_train: int, n_val: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the 1,797 images of the training and validation splits of ``seed``
    (stratified: every digit keeps its share in both; :mod:`playground.holdout` takes the
    hidden test split from the rest)."""
    from sklearn.model_selection import train_test_split

    _, target = _digits_source()
    train_idx, val_idx = train_test_split(np.arange(len(target)), train_size=n_train,
                                          test_size=n_val, stratify=target,
                                          random_state=seed % 2**32)
    return train_idx, val_idx


def _build_digits(req: _Request) -> _Arrays:
    images, target = _digits_source()
    train_idx, val_idx = _digits_split(req.seed, req.n_train, req.n_val)

    def take(idx: np.ndarray) -> tuple[Tensor, Tensor]:
        x = torch.from_numpy(images[idx]).unsqueeze(1)  # (N, 1, 8, 8)
        return _fit_images(x, req.input_shape), torch.from_numpy(target[idx])

    train_x, train_y = take(train_idx)
    val_x, val_y = take(val_idx)
    train_x, val_x, mean, std = _normalise(train_x, val_x)
    classes = tuple(str(d) for d in range(10))
    return _Arrays(train_x, train_y, val_x, val_y, classes, mean, std)


# ---------------------------------------------------------------------------------------------
# 2-D point sets, as in TensorFlow Playground (coordinates scaled to about [-1, 1])


def _points_spirals(labels: np.ndarray, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    # TF Playground: r = i / n * 5, t = 1.75 * i / n * 2 pi + delta; here r in [0, 1]
    r = rng.uniform(0.0, 1.0, len(labels))
    t = 1.75 * 2 * math.pi * r + 2 * math.pi * labels / num_classes
    return np.stack([r * np.sin(t), r * np.cos(t)], 1)


def _points_moons(labels: np.ndarray, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    # scikit-learn make_moons: outer (cos t, sin t), inner (1 - cos t, 0.5 - sin t)
    t = rng.uniform(0.0, math.pi, len(labels))
    outer = np.stack([np.cos(t), np.sin(t)], 1)
    inner = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1)
    xy = np.where(labels[:, None] == 0, outer, inner)
    return (xy - np.array([0.5, 0.25])) * 0.8  # centre on the origin


def _points_circles(labels: np.ndarray, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    # TF Playground: label 1 inside r < R/2, label 0 in the ring 0.7R..R
    n = len(labels)
    r = np.where(labels == 1, rng.uniform(0.0, 0.5, n), rng.uniform(0.7, 1.0, n))
    a = rng.uniform(0.0, 2 * math.pi, len(labels))
    return np.stack([r * np.cos(a), r * np.sin(a)], 1)


def _points_xor(labels: np.ndarray, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    # TF Playground: uniform in the square, kept `pad` away from the axes; label = x * y > 0
    pad = 0.06
    mag = rng.uniform(pad, 1.0, (len(labels), 2))
    sx = rng.choice([-1.0, 1.0], len(labels))
    sy = np.where(labels == 1, sx, -sx)  # same sign -> x*y > 0 -> class 1
    return mag * np.stack([sx, sy], 1)


_POINT_GENERATORS: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "spirals": _points_spirals,
    "spirals3": _points_spirals,
    "moons": _points_moons,
    "circles": _points_circles,
    "xor": _points_xor,
}


def _build_points(req: _Request) -> _Arrays:
    info = get_dataset_info(req.name)
    draw = _POINT_GENERATORS[req.name]
    noise = req.noise or 0.0
    parts: list[Tensor] = []
    for stream, count in ((0, req.n_train), (1, req.n_val)):
        rng = np.random.default_rng(_sub_seed(req.seed, stream))
        labels = rng.permutation(np.arange(count, dtype=np.int64) % info.num_classes)
        xy = draw(labels, info.num_classes, rng)
        xy = xy + rng.normal(0.0, noise, xy.shape)  # label decided before the noise, as TF does
        parts += [torch.from_numpy(xy.astype(np.float32)), torch.from_numpy(labels)]
    return _Arrays(*parts, classes=info.classes)


# ---------------------------------------------------------------------------------------------
# the registry

_IMAGE_SHAPES_RGB = ((3, 32, 32), (3, 16, 16), (3, 64, 64), (1, 32, 32), (1, 16, 16))
_DIGIT_NAMES = tuple(str(d) for d in range(10))


def _register(info: DatasetInfo, build: Callable[[_Request], _Arrays]) -> None:
    DATASETS.register(info.name, DatasetEntry(info, build), help=info.description)


_register(
    DatasetInfo(
        name="shapes",
        title="Shapes",
        description=(
            "Ten kinds of simple shapes (circle, square, triangle, cross, plus, ring, stripes, "
            "a diagonal line, a checkerboard) drawn at random places, sizes, angles and colours "
            "with pixel noise. Built in and generated in about a second; colour tells you "
            "nothing, so a network has to learn the outlines."
        ),
        kind="image",
        input_shape=(3, 32, 32),
        input_shapes=_IMAGE_SHAPES_RGB,
        num_classes=10,
        classes=_SHAPE_CLASSES,
        needs_download=False,
        n_train=10_000,
        n_val=2_000,
        max_train=MAX_GENERATED,
        max_val=MAX_GENERATED,
        source="generated procedurally by playground/data.py",
        hflip_safe=True,
    ),
    _build_shapes,
)
_register(
    DatasetInfo(
        name="digits",
        title="Digits (8x8)",
        description=(
            "1,797 small hand-written digits, originally 8x8 pixels, scaled up. Ships with "
            "scikit-learn, so it needs no download; a quick first real-world set."
        ),
        kind="image",
        input_shape=(1, 16, 16),
        input_shapes=((1, 16, 16), (1, 8, 8), (1, 28, 28), (1, 32, 32), (3, 32, 32)),
        num_classes=10,
        classes=_DIGIT_NAMES,
        needs_download=False,
        n_train=1_437,
        n_val=360,
        max_train=_DIGITS_TOTAL - 10,
        max_val=_DIGITS_TOTAL - 10,
        source="UCI Optical Recognition of Handwritten Digits, via sklearn.datasets.load_digits",
    ),
    _build_digits,
)

_POINT_SETS = (
    ("spirals", "Spirals", "Two spiral arms wound around each other: the hardest of the "
     "TensorFlow Playground sets; a straight line cannot separate them.",
     ("arm A", "arm B"), 0.03),
    ("spirals3", "Spirals (3 arms)", "Three interleaved spiral arms: like Spirals, with three "
     "classes.", ("arm A", "arm B", "arm C"), 0.03),
    ("moons", "Moons", "Two interleaving half circles; one bend in the boundary is enough.",
     ("upper moon", "lower moon"), 0.1),
    ("circles", "Circles", "A disc inside a ring: the boundary is a circle, which a linear "
     "model can only find with squared features.", ("ring", "disc"), 0.05),
    ("xor", "XOR", "Four quadrants; the label is whether x and y have the same sign, the "
     "classic problem a single neuron cannot solve.", ("different signs", "same sign"), 0.05),
)
for _name, _title, _text, _classes, _noise in _POINT_SETS:
    _register(
        DatasetInfo(
            name=_name,
            title=_title,
            description=_text + " Points in 2-D (input shape (2,)), for MLPs.",
            kind="points",
            input_shape=(2,),
            input_shapes=((2,),),
            num_classes=len(_classes),
            classes=_classes,
            needs_download=False,
            n_train=800,
            n_val=400,
            max_train=MAX_GENERATED,
            max_val=MAX_GENERATED,
            source="TensorFlow Playground / scikit-learn formulas, generated here",
            default_noise=_noise,
        ),
        _build_points,
    )


# the torchvision sets register themselves after the built-in ones (menus list those first)
from playground import datasets_torchvision as _datasets_torchvision  # noqa: E402, F401
