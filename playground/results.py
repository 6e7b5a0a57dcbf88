"""What a trained network learned, as plain data: accuracy, confusion, examples, boundaries,
filters, feature maps, saliency, and predictions for an uploaded image.

Everything works on a built model with its weights loaded (any ``nn.Module``; spec-built in
practice) and the validation split that training evaluated on. Results are dataclasses of numpy
arrays and plain Python values; drawing them is ``ui/``'s job, and nothing here imports
Streamlit.

Conventions
-----------
- Data: :func:`validation_data` takes its tensors from
  :func:`playground.train.validation_split`, so they are bit-identical to what training
  evaluated: standardised per channel (``(x - mean) / std``) and shaped to the network input
  (point sets: ``(N, 2)`` reshaped to the spec's input, e.g. ``(N, 2, 1, 1)``).
- Mode: each function runs the model in eval mode (batch norm running statistics, no dropout),
  under ``torch.no_grad`` except :func:`saliency`, and sets every module's own train/eval flag
  back afterwards. No gradient is left in any parameter. A lock per model serialises the calls
  on one model (hooks and mode switches on a model shared by several sessions); different
  models are used side by side.
- Evaluation: the same arithmetic as ``playground.train._evaluate`` (batches of 512, ``argmax``
  of the logits, ``correct / N``; mean cross-entropy in float32), so the accuracy is equal to the
  last bit. ``confidence`` is the softmax probability of the predicted class. The confusion matrix
  has one row per true class and one column per network output (``labels``: the class names,
  then ``"output k"`` for outputs beyond the data set's classes); row-normalised, a row without
  examples is all zeros and its per-class accuracy ``None``.
- Decision boundary: TensorFlow Playground's background (Smilkov & Carter 2016): the class the
  network predicts at each point of a grid over the plane, the grid spanning the points plus a
  margin. Grids are ``(len(ys), len(xs))``: row ``i`` is ``y = ys[i]``, column ``j`` is
  ``x = xs[j]``, the layout of a Plotly heatmap's ``z``.
- Filters: the first ``Conv2d``'s weights; each filter scaled to 0..1 by its own minimum and
  maximum (a constant filter is 0.5), as in CS231n's "Visualizing what ConvNets learn". A filter
  with 3 input channels is an RGB image; otherwise one grey image, the mean over its input
  channels (for one input channel: that channel).
- Feature maps (CNN Explainer, Wang et al. 2020): the output of every ``Conv2d`` (before its
  norm and activation) or of every block (after its activation) for one image, from forward
  hooks; outputs are cloned, since an in-place activation right after a convolution would
  overwrite it.
- Saliency (Simonyan, Vedaldi & Zisserman 2014, "Deep inside convolutional networks", sec. 3):
  ``|d S_c / d x|``, the gradient of the class score (the logit, before softmax) with respect to
  the input, maximised over colour channels.
- Uploads: decoded by Pillow from a short list of formats (:data:`UPLOAD_FORMATS`), size and
  pixel count checked before decoding, EXIF orientation applied, transparency laid on white,
  converted to the set's channels (grey by ITU-R BT.601 luma, as the data sets), centre-cropped to
  the network's aspect ratio, resized bilinearly (anti-aliased, as the sets), scaled to 0..1 and
  standardised with the set's mean/std.
"""

from __future__ import annotations

import io
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor, nn

from playground.data import DataSplit
from playground.errors import PlaygroundError
from playground.spec import NetworkSpec
from playground.train import TrainSettings, validation_split

__all__ = [
    "EVAL_BATCH", "MAX_RESOLUTION", "MAX_UPLOAD_BYTES", "MAX_UPLOAD_PIXELS", "UPLOAD_FORMATS",
    "Boundary", "EvalResult", "FeatureMap", "Filters", "GridItem", "Prediction", "ResultsError",
    "Saliency", "Upload", "UploadError", "ValidationData", "decision_boundary", "evaluate",
    "evaluation_from_predictions", "feature_maps", "first_layer_filters", "predict_one",
    "prediction_grid", "prepare_upload",
    "saliency", "validation_data",
]

EVAL_BATCH = 512  # playground.train._EVAL_BATCH: the same batches give the same logits
MAX_RESOLUTION = 400  # decision-boundary grid side: 160,000 points at most
MAX_UPLOAD_BYTES = 10 * 2**20
MAX_UPLOAD_PIXELS = 40_000_000  # below Pillow's own bomb warning (~89 M pixels)
UPLOAD_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")  # no EPS (Ghostscript) etc.

_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _lock(model: nn.Module) -> threading.RLock:
    """The lock of one model: a model shared by sessions (a server cache) is used by one call
    at a time, while different models run side by side."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


class ResultsError(PlaygroundError):
    """A result that cannot be computed for this model or data set."""


class UploadError(ResultsError):
    """An uploaded file that cannot be used as an input image."""


# -- data --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ValidationData:
    """The validation examples training evaluated on, ready for the network.

    ``x``: float32 ``(N, *input_shape)``, standardised; ``y``: int64 ``(N,)``; ``kind``:
    ``"image"`` or ``"points"``; ``mean``/``std``: per-channel statistics that were subtracted /
    divided by (empty for point sets).
    """

    x: Tensor
    y: Tensor
    classes: list[str]
    kind: str
    input_shape: tuple[int, ...]  # the network's input shape (spec.input.shape)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dataset: str  # registry name
    title: str  # the set's display title

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    def images(self, indices: Sequence[int] | None = None) -> np.ndarray:
        """Examples as displayable images ``(n, H, W, C)`` in 0..1 (C = 1 or 3): the
        normalisation undone as :func:`playground.data.denormalize` does."""
        if self.kind != "image":
            raise ResultsError(f"{self.title} is a set of 2-D points, not images")
        x = self.x if indices is None else self.x[torch.as_tensor(list(indices),
                                                                  dtype=torch.long)]
        return _to_display(x.detach().cpu().float(), self.mean, self.std)

    def points(self) -> np.ndarray:
        """Point sets: the coordinates ``(N, 2)`` (x, y), as the network reads them."""
        if self.kind != "points":
            raise ResultsError(f"{self.title} is an image set, not 2-D points")
        return self.x.detach().cpu().float().reshape(self.n, 2).numpy()


def _to_display(x: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """``(n, C, H, W)`` standardised -> ``(n, H, W, C)`` in 0..1."""
    if mean:
        m = torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
        s = torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
        x = (x * s + m).clamp(0.0, 1.0)
    return x.permute(0, 2, 3, 1).numpy()


def validation_data(spec: NetworkSpec, settings: TrainSettings, device: str = "cpu", *,
                    data: DataSplit | None = None) -> ValidationData:
    """The validation split of a run of ``spec`` with ``settings`` (``data``: the split given
    to ``train(data=...)``), exactly as training evaluated it."""
    split, val_x, val_y = validation_split(spec, settings, data, device)
    return ValidationData(val_x, val_y, list(split.classes), split.info.kind,
                          tuple(spec.input.shape), tuple(split.mean), tuple(split.std),
                          split.info.name, split.info.title)


# -- model helpers -----------------------------------------------------------------------------
@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode under the module lock; every module's own flag is restored afterwards."""
    with _lock(model):
        flags = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            yield
        finally:
            for m, was in flags:
                m.training = was


def _device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _one(x: Tensor, model: nn.Module) -> Tensor:
    """One example ``(C, H, W)`` (or already ``(1, C, H, W)``) as a batch on the model's
    device."""
    if not isinstance(x, Tensor):
        raise ResultsError("expected one example as a tensor")
    if x.dim() == 4 and x.shape[0] != 1:
        raise ResultsError(f"expected one example; got a batch of {x.shape[0]}")
    return (x if x.dim() == 4 else x.unsqueeze(0)).to(_device(model), torch.float32)


def _labels(classes: list[str], n_outputs: int) -> list[str]:
    return list(classes) + [f"output {k}" for k in range(len(classes), n_outputs)]


# -- evaluation --------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalResult:
    """The network on the whole validation split (see the module doc for conventions).

    ``confusion``: int64 ``(K, M)``, rows = true class (K classes), columns = predicted output
    (M = network outputs, ``labels``); ``confusion_norm``: float64, each row divided by its sum.
    ``true``/``pred``: int64 ``(N,)``; ``confidence``: float32 ``(N,)``.
    """

    accuracy: float
    loss: float
    n: int
    classes: list[str]
    labels: list[str]
    confusion: np.ndarray
    confusion_norm: np.ndarray
    per_class: dict[str, float | None]
    true: np.ndarray
    pred: np.ndarray
    confidence: np.ndarray

    def to_dict(self, predictions: bool = False) -> dict[str, Any]:
        """JSON-ready; ``predictions`` adds the per-example lists."""
        out: dict[str, Any] = {
            "accuracy": self.accuracy, "loss": self.loss, "n": self.n,
            "classes": list(self.classes), "labels": list(self.labels),
            "confusion": self.confusion.tolist(),
            "confusion_norm": self.confusion_norm.tolist(),
            "per_class": dict(self.per_class),
        }
        if predictions:
            out |= {"true": self.true.tolist(), "pred": self.pred.tolist(),
                    "confidence": self.confidence.tolist()}
        return out


def evaluate(model: nn.Module, data: ValidationData, batch_size: int = EVAL_BATCH) -> EvalResult:
    """Accuracy, loss, confusion matrix and every prediction on ``data``.

    With the default ``batch_size`` the accuracy and loss equal ``train._evaluate``'s exactly.
    """
    dev = _device(model)
    n = data.n
    k = len(data.classes)
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev, dtype=torch.long)
    preds: list[Tensor] = []
    confs: list[Tensor] = []
    m = k
    with _eval_mode(model), torch.no_grad():
        for start in range(0, n, batch_size):
            xb = data.x[start:start + batch_size].to(dev)
            yb = data.y[start:start + batch_size].to(dev)
            out = model(xb)  # (B, M) logits
            m = int(out.shape[1])
            loss_sum += F.cross_entropy(out.float(), yb, reduction="sum")
            pred = out.argmax(1)
            correct += (pred == yb).sum()
            confs.append(out.float().softmax(1).gather(1, pred[:, None])[:, 0].cpu())
            preds.append(pred.cpu())
    denom = max(n, 1)
    return evaluation_from_predictions(
        data, torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long),
        torch.cat(confs) if confs else torch.zeros(0), m, float(loss_sum) / denom,
        accuracy=int(correct) / denom)


def evaluation_from_predictions(data: ValidationData, pred: Tensor, conf: Tensor,
                                n_outputs: int, loss: float | None, *,
                                accuracy: float | None = None) -> EvalResult:
    """The :class:`EvalResult` of given predictions on ``data`` (e.g. those the training's
    last evaluation stored with a checkpoint, :func:`playground.checkpoints.load_predictions`):
    the accuracy is ``correct / N`` as the trainer computes it. ``loss`` may be unknown
    (``nan``)."""
    n, k = data.n, len(data.classes)
    if int(pred.shape[0]) != n or int(conf.shape[0]) != n:
        raise ResultsError(f"{int(pred.shape[0])} predictions for {n} validation examples")
    denom = max(n, 1)
    true = data.y.cpu().numpy().astype(np.int64)
    pred_np = pred.cpu().numpy().astype(np.int64)
    conf_np = conf.cpu().numpy().astype(np.float32)
    if accuracy is None:
        accuracy = int((pred_np == true).sum()) / denom
    m = max(int(n_outputs), k, int(pred_np.max()) + 1 if n else 0)
    confusion = np.bincount(true * m + pred_np, minlength=k * m).reshape(k, m).astype(np.int64)
    rows = confusion.sum(1, keepdims=True)
    norm = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    per_class = {c: (float(confusion[i, i] / rows[i, 0]) if rows[i, 0] else None)
                 for i, c in enumerate(data.classes)}
    return EvalResult(accuracy, float("nan") if loss is None else float(loss), n,
                      list(data.classes), _labels(data.classes, m), confusion, norm, per_class,
                      true, pred_np, conf_np)


@dataclass(frozen=True)
class GridItem:
    """One validation example to show; ``image`` ``(H, W, C)`` in 0..1 for image sets."""

    index: int
    true: int
    pred: int
    true_label: str
    pred_label: str
    confidence: float
    correct: bool
    image: np.ndarray | None = None


def prediction_grid(result: EvalResult, data: ValidationData | None = None,
                    n: int = 16) -> list[GridItem]:
    """Up to ``n`` examples: the wrong ones first, most confident first, then the right ones,
    most confident first (ties by index). With image ``data`` each item carries its image."""
    idx = np.arange(result.n)
    wrong = result.pred != result.true
    order = np.lexsort((idx, -result.confidence.astype(np.float64), ~wrong))[:max(n, 0)]
    images = (data.images(order.tolist()) if data is not None and data.kind == "image"
              and len(order) else None)
    return [GridItem(int(i), int(result.true[i]), int(result.pred[i]),
                     result.labels[result.true[i]], result.labels[result.pred[i]],
                     float(result.confidence[i]), not bool(wrong[i]),
                     None if images is None else images[j])
            for j, i in enumerate(order)]


# -- decision boundary -------------------------------------------------------------------------
@dataclass(frozen=True)
class Boundary:
    """The predicted class over a grid of the plane (see the module doc for the layout).

    ``pred`` int64 and ``prob`` float32 (the winning softmax probability) are
    ``(len(ys), len(xs))``; ``points`` float32 ``(N, 2)`` and ``y`` int64 ``(N,)`` are the
    validation points and their true classes.
    """

    xs: np.ndarray
    ys: np.ndarray
    pred: np.ndarray
    prob: np.ndarray
    points: np.ndarray
    y: np.ndarray
    classes: list[str]
    labels: list[str]


def decision_boundary(model: nn.Module, data: ValidationData, resolution: int = 100,
                      margin: float = 0.1) -> Boundary:
    """The class the network predicts over the plane, for 2-D point sets.

    The grid spans the points' bounding box widened on every side by ``margin`` times its
    larger side; each grid point goes through the same reshape as the data (to
    ``data.input_shape``).
    """
    if data.kind != "points":
        raise ResultsError(f"a decision boundary needs a 2-D point set; {data.title} is images")
    if not 2 <= resolution <= MAX_RESOLUTION:
        raise ResultsError(f"resolution must be 2 to {MAX_RESOLUTION}; got {resolution}")
    pts = data.points()
    lo, hi = pts.min(0), pts.max(0)
    pad = margin * max(float((hi - lo).max()), 1e-3)
    xs = np.linspace(lo[0] - pad, hi[0] + pad, resolution, dtype=np.float32)
    ys = np.linspace(lo[1] - pad, hi[1] + pad, resolution, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)  # (R, R): [i, j] = (xs[j], ys[i])
    grid = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1))  # (R*R, 2), as (N, 2) data
    dev = _device(model)
    preds, probs = [], []
    with _eval_mode(model), torch.no_grad():
        for start in range(0, grid.shape[0], 8192):
            xb = grid[start:start + 8192].to(dev).reshape(-1, *data.input_shape)
            p = model(xb).float().softmax(1)
            prob, pred = p.max(1)
            preds.append(pred.cpu())
            probs.append(prob.cpu())
            m = int(p.shape[1])
    shape = (resolution, resolution)
    return Boundary(xs, ys, torch.cat(preds).numpy().reshape(shape),
                    torch.cat(probs).numpy().reshape(shape), pts,
                    data.y.cpu().numpy().astype(np.int64), list(data.classes),
                    _labels(data.classes, max(m, len(data.classes))))


# -- filters and feature maps ------------------------------------------------------------------
@dataclass(frozen=True)
class Filters:
    """The first convolution's filters: ``weight`` float32 ``(out, in, kh, kw)``; ``images``
    in 0..1, ``(out, kh, kw, 3)`` when ``rgb`` else ``(out, kh, kw)`` (mean over inputs)."""

    name: str
    weight: np.ndarray
    images: np.ndarray
    rgb: bool


def first_layer_filters(model: nn.Module) -> Filters | None:
    """The filters of the first ``Conv2d`` in module order; ``None`` without one."""
    found = next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    if found is None:
        return None
    name, conv = found
    w = conv.weight.detach().float().cpu().numpy()  # (O, I, kh, kw)
    rgb = w.shape[1] == 3
    img = w.transpose(0, 2, 3, 1) if rgb else w.mean(1)  # (O, kh, kw, 3) or (O, kh, kw)
    axes = tuple(range(1, img.ndim))
    lo = img.min(axis=axes, keepdims=True)
    span = img.max(axis=axes, keepdims=True) - lo
    scaled = np.divide(img - lo, span, out=np.full_like(img, 0.5), where=span > 0)
    return Filters(name, w, scaled.astype(np.float32), rgb)


@dataclass(frozen=True)
class FeatureMap:
    """One module's output for one image: ``maps`` float32 ``(C, H, W)`` (batch dim dropped)."""

    name: str
    kind: str  # the module's class name: Conv2d, Sequential, MaxPool2d...
    maps: np.ndarray


def feature_maps(model: nn.Module, x: Tensor, names: Sequence[str] | None = None, *,
                 which: Literal["conv", "blocks"] = "conv") -> list[FeatureMap]:
    """Activations of one image ``x`` (``(C, H, W)``, normalised), in module order.

    ``which="conv"``: every ``Conv2d``; ``"blocks"``: every child of a top-level part
    (``stem.conv``, ``stage1.layer1``, ``stage1.pool``...) whose output is ``(1, C, H, W)``.
    ``names`` picks modules by name instead (any output; unknown names raise).
    """
    modules = dict(model.named_modules())
    if names is not None:
        unknown = [n for n in names if not n or n not in modules]
        if unknown:
            raise ResultsError(f"the model has no module named {', '.join(map(repr, unknown))}")
        chosen = list(dict.fromkeys(names))
    elif which == "conv":
        chosen = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
    elif which == "blocks":
        chosen = [n for n in modules if n.count(".") == 1]
    else:
        raise ResultsError(f"which must be 'conv' or 'blocks'; got {which!r}")
    xb = _one(x, model)
    seen: dict[str, Tensor] = {}

    def hook(name: str) -> Any:
        def keep(_m: nn.Module, _inp: Any, out: Any) -> None:
            if isinstance(out, Tensor) and name not in seen:
                seen[name] = out.detach().clone()  # before any in-place op changes it
        return keep

    with _eval_mode(model), torch.no_grad():
        handles = [modules[n].register_forward_hook(hook(n)) for n in chosen]
        try:
            model(xb)
        finally:
            for h in handles:
                h.remove()
    keep_all = names is not None
    return [FeatureMap(n, type(modules[n]).__name__, seen[n][0].float().cpu().numpy())
            for n in chosen if n in seen and (keep_all or seen[n].dim() == 4)]


# -- saliency and single predictions -----------------------------------------------------------
@dataclass(frozen=True)
class Prediction:
    """The network's answer for one input: ``probs`` per output (``labels``)."""

    pred: int
    label: str
    confidence: float
    probs: list[float]
    labels: list[str]


def _prediction(logits: Tensor, classes: list[str]) -> Prediction:
    p = logits.detach().float().softmax(0).cpu()
    i = int(p.argmax())
    labels = _labels(classes, int(p.shape[0]))
    return Prediction(i, labels[i], float(p[i]), p.tolist(), labels)


def predict_one(model: nn.Module, x: Tensor, classes: list[str]) -> Prediction:
    """Softmax probabilities of one example ``x`` (e.g. :attr:`Upload.x`)."""
    with _eval_mode(model), torch.no_grad():
        return _prediction(model(_one(x, model))[0], classes)


@dataclass(frozen=True)
class Saliency:
    """``saliency`` float32 ``(H, W)`` = ``|grad|`` max over channels; ``grad`` float32, the
    shape of one input ``(C, H, W)``; ``score``: the target's logit; ``prediction``: softmax."""

    target: int
    score: float
    saliency: np.ndarray
    grad: np.ndarray
    prediction: Prediction


def saliency(model: nn.Module, x: Tensor, target: int | None = None,
             classes: list[str] | None = None) -> Saliency:
    """Simonyan et al.'s saliency map of one input for class ``target`` (default: the
    predicted class)."""
    xb = _one(x, model).detach().clone().requires_grad_(True)
    with _eval_mode(model), torch.enable_grad():
        out = model(xb)[0]  # (M,) logits
        t = int(out.argmax()) if target is None else int(target)
        if not 0 <= t < out.shape[0]:
            raise ResultsError(f"target must be a class 0 to {out.shape[0] - 1}; got {t}")
        (grad,) = torch.autograd.grad(out[t], xb)  # parameters' .grad untouched
    g = grad[0].float().cpu()
    sal = g.abs().amax(0) if g.dim() == 3 else g.abs()
    return Saliency(t, float(out[t].detach()), sal.numpy(), g.numpy(),
                    _prediction(out, list(classes or [])))


# -- uploads -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Upload:
    """An uploaded image made into one network input: ``x`` float32 ``(C, H, W)`` standardised;
    ``image`` ``(H, W, C)`` in 0..1, what the network sees; ``original_size`` (width, height)."""

    x: Tensor
    image: np.ndarray
    original_size: tuple[int, int]
    format: str


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def prepare_upload(image_bytes: bytes, data: ValidationData, *,
                   max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_UPLOAD_PIXELS,
                   invert: bool = False) -> Upload:
    """Decode an uploaded image and make it an input like ``data``'s (module doc, "Uploads").

    ``invert`` turns dark-on-light drawings into the light-on-dark digits of ``digits`` and
    MNIST. Raises :class:`UploadError` with one line for anything unusable.
    """
    if data.kind != "image" or len(data.input_shape) != 3:
        raise UploadError(f"uploads need an image data set; {data.title} is 2-D points")
    if not isinstance(image_bytes, bytes | bytearray | memoryview):
        raise UploadError("expected the uploaded file's bytes")
    size = len(image_bytes)
    if size == 0:
        raise UploadError("the uploaded file is empty")
    if size > max_bytes:
        raise UploadError(f"the file is {_mib(size)}; the limit is {_mib(max_bytes)}")
    c, h, w = data.input_shape
    mode = "RGB" if c == 3 else "L"
    try:
        with Image.open(io.BytesIO(image_bytes), formats=UPLOAD_FORMATS) as src:
            fmt = str(src.format)
            width, height = src.size
            if width * height > max_pixels:  # checked before any pixel is decoded
                raise UploadError(f"the image is {width}x{height} pixels; the limit is "
                                  f"{max_pixels:,} pixels")
            src.draft(mode, (w, h))  # JPEG: decode at a reduced scale still >= (w, h)
            src.load()
            img = ImageOps.exif_transpose(src)
            img = _on_white(_eight_bit(img)).convert(mode)
    except UploadError:
        raise
    except Image.DecompressionBombError:
        raise UploadError(f"the image has too many pixels; the limit is {max_pixels:,}") from None
    except Exception:  # Pillow raises many types for broken or hostile files
        raise UploadError("the file could not be read as an image ("
                          + ", ".join(UPLOAD_FORMATS) + ")") from None
    box = _centre_box(img.size, w / h)
    img = img.crop(box).resize((w, h), Image.Resampling.BILINEAR)  # no bleed from outside
    arr = np.asarray(img, dtype=np.float32) / 255.0  # (H, W) or (H, W, 3)
    t = torch.from_numpy(arr.reshape(h, w, c).copy()).permute(2, 0, 1)  # (C, H, W)
    if invert:
        t = 1.0 - t
    image = t.permute(1, 2, 0).numpy().copy()
    if data.mean:
        m = torch.tensor(data.mean, dtype=torch.float32).view(-1, 1, 1)
        s = torch.tensor(data.std, dtype=torch.float32).view(-1, 1, 1)
        t = (t - m) / s
    return Upload(t.contiguous(), image, (width, height), fmt)


def _eight_bit(img: Image.Image) -> Image.Image:
    """16-bit grey (PNG, TIFF) scaled to 8 bits; Pillow's own conversion would clip at 255."""
    if img.mode.startswith("I"):
        arr = np.asarray(img, dtype=np.float64) / 257.0  # 0..65535 -> 0..255
        return Image.fromarray(np.round(arr).clip(0, 255).astype(np.uint8))
    return img


def _on_white(img: Image.Image) -> Image.Image:
    """Transparent pixels laid on white (uploads are mostly drawings and icons)."""
    if img.mode in {"RGBA", "LA", "PA"} or "transparency" in img.info:
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img


def _centre_box(size: tuple[int, int], aspect: float) -> tuple[int, int, int, int]:
    """The largest centred box of ``size`` (width, height) with width / height = ``aspect``."""
    width, height = size
    if width / height > aspect:
        cw = max(1, round(height * aspect))
        left = (width - cw) // 2
        return left, 0, left + cw, height
    ch = max(1, round(width / aspect))
    top = (height - ch) // 2
    return 0, top, width, top + ch
