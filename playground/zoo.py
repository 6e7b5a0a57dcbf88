"""torchvision's classification models by name, for analysis and training.

Every model that ``torchvision.models.list_models(module=torchvision.models)`` lists is offered,
grouped into families (a model a later torchvision adds lands in "Other classics"). Models come
from ``torchvision.models.get_model(name, weights=None, num_classes=...)``: random weights, never
a download. :func:`list_zoo` is the listing pickers use: name, group, label, input size, note.

Input sizes are read from torchvision's own weight enums without downloading anything: the
``crop_size`` of the default weights' transforms (inception_v3 299, efficientnet_b2 288,
swin_v2_* 256, regnet_y_128gf 384, ...), and ``meta["min_size"]`` for the smallest input. ViT
and MaxViT fix the input when they are built (ViT: ``image_size=224`` without weights; MaxViT:
``input_size=(224, 224)``), Swin needs multiples of 32; :func:`zoo_input_problem` checks all of
this before any tensor work.

GoogLeNet and Inception-v3 are built with ``aux_logits=False``: their auxiliary classifiers only
run in training mode, so torchvision's eval-mode forward (the one the analysis and fvcore trace)
never calls them; without them a training step returns plain logits too. ``transform_input``
keeps torchvision's no-weights default (False); the re-normalisation it would add costs no MACs
in fvcore's convention (see docs/analysis.md).

References: AlexNet (Krizhevsky et al. 2012), VGG (Simonyan & Zisserman 2015), GoogLeNet
(Szegedy et al. 2015), Inception-v3 (Szegedy et al. 2016), ResNet (He et al. 2016), DenseNet
(Huang et al. 2017), MobileNet-V2/V3 (Sandler et al. 2018; Howard et al. 2019), MnasNet (Tan et
al. 2019), EfficientNet (Tan & Le 2019, 2021), RegNet (Radosavovic et al. 2020), ViT
(Dosovitskiy et al. 2021), Swin Transformer (Liu et al. 2021, 2022), ConvNeXt (Liu et al. 2022),
MaxViT (Tu et al. 2022).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torchvision
from torch import nn
from torch.utils._device import DeviceContext

from playground.errors import PlaygroundError, UnknownNameError


@dataclass(frozen=True)
class ZooFamily:
    key: str
    title: str
    members: tuple[str, ...]
    teaches: str


@dataclass(frozen=True)
class ZooModel:
    """One torchvision model as a picker lists it."""

    name: str  # torchvision's name, e.g. "regnet_y_400mf"
    family: str  # ZooFamily.key
    group: str  # the family's title, e.g. "RegNet": the picker's group heading
    label: str  # "RegNet: regnet_y_400mf"
    input_shape: tuple[int, int, int]  # (C, H, W) the model is analysed at by default
    note: str = ""  # how the model differs from torchvision's defaults, or ""


FAMILIES: tuple[ZooFamily, ...] = (
    ZooFamily("resnet", "ResNet", ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                                   "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
                                   "wide_resnet50_2", "wide_resnet101_2"),
              "Residual connections let very deep networks train."),
    ZooFamily("vgg", "VGG", ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn",
                             "vgg19", "vgg19_bn"),
              "Plain stacks of 3x3 convolutions; most parameters in the classifier."),
    ZooFamily("inception", "GoogLeNet / Inception", ("googlenet", "inception_v3"),
              "Parallel 1x1, 3x3 and 5x5 branches side by side; 1x1 bottlenecks keep them cheap."),
    ZooFamily("densenet", "DenseNet", ("densenet121", "densenet161", "densenet169",
                                       "densenet201"),
              "Every layer sees the concatenated maps of all earlier layers in its block."),
    ZooFamily("efficientnet", "EfficientNet",
              (*(f"efficientnet_b{i}" for i in range(8)), "efficientnet_v2_s",
               "efficientnet_v2_m", "efficientnet_v2_l"),
              "Compound scaling of depth, width and resolution; depthwise MBConv blocks."),
    ZooFamily("mobilenet", "MobileNet / MnasNet", ("mobilenet_v2", "mobilenet_v3_small",
                                                   "mobilenet_v3_large", "mnasnet0_5",
                                                   "mnasnet0_75", "mnasnet1_0", "mnasnet1_3"),
              "Depthwise-separable convolutions: few parameters and MACs for phones."),
    ZooFamily("small", "ShuffleNet / SqueezeNet", ("shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
                                                   "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
                                                   "squeezenet1_0", "squeezenet1_1"),
              "Tiny networks: channel shuffles and grouped 1x1 convs, or 1x1 'squeeze' layers."),
    ZooFamily("regnet", "RegNet",
              tuple(f"regnet_{kind}_{size}" for kind, sizes in (
                  ("x", ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf")),
                  ("y", ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf", "128gf")))
                  for size in sizes),
              "Widths and depths from one linear rule found by searching a design space; "
              "Y adds squeeze-excitation."),
    ZooFamily("convnext", "ConvNeXt", ("convnext_tiny", "convnext_small", "convnext_base",
                                       "convnext_large"),
              "A ResNet modernised with transformer-era choices (7x7 depthwise, LayerNorm, GELU)."),
    ZooFamily("vit", "Vision Transformer", ("vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32",
                                            "vit_h_14"),
              "Images as sequences of 16x16 patches fed to a transformer encoder."),
    ZooFamily("swin", "Swin Transformer", ("swin_t", "swin_s", "swin_b", "swin_v2_t",
                                           "swin_v2_s", "swin_v2_b"),
              "Attention inside shifted local windows; a hierarchy of feature maps like a CNN."),
    ZooFamily("maxvit", "MaxViT", ("maxvit_t",),
              "MBConv, attention in local windows and attention across a sparse global grid."),
    ZooFamily("other", "Other classics", ("alexnet",),
              "Milestones: AlexNet (2012) started the deep-learning era of vision."),
)
_OTHER = FAMILIES[-1]

# Keyword arguments beyond weights/num_classes; _NOTES says what they change (pickers show it).
_BUILD_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "init_weights": False},
    "inception_v3": {"aux_logits": False, "init_weights": False},
}
_NOTES = {
    "googlenet": "without its 2 auxiliary classifiers, which run only in training",
    "inception_v3": "without its auxiliary classifier, which runs only in training",
}
# Built for one input size: ViT's position embeddings (image_size=224 without weights) and
# MaxViT's attention grid (input_size=(224, 224)).
_FIXED_224 = ("vit_", "maxvit_")


@functools.cache
def _available() -> frozenset[str]:
    return frozenset(torchvision.models.list_models(module=torchvision.models))


@functools.cache
def _ordered() -> tuple[tuple[str, ZooFamily], ...]:
    """(name, family) for every available model: families in order, then unlisted names."""
    available = _available()
    listed = [(m, f) for f in FAMILIES for m in f.members if m in available]
    known = {m for m, _ in listed}
    return (*listed, *((m, _OTHER) for m in sorted(available - known)))


def zoo_names() -> list[str]:
    """Every classification model this torchvision provides, grouped by family."""
    return [m for m, _ in _ordered()]


def is_zoo_model(name: str) -> bool:
    return name in _available()


def family_of(name: str) -> ZooFamily | None:
    return next((f for m, f in _ordered() if m == name), None)


def _default_weights(name: str) -> Any:
    """torchvision's default weight enum entry (its transforms and meta; nothing downloaded)."""
    try:
        return torchvision.models.get_model_weights(name).DEFAULT  # type: ignore[attr-defined]
    except (ValueError, AttributeError):
        return None


def _side(size: Any) -> int:
    return int(size if isinstance(size, int) else max(size))


@functools.lru_cache(maxsize=256)
def native_input(name: str) -> tuple[int, int, int]:
    """(3, side, side): the crop size of torchvision's default weights; 224 for ViT/MaxViT (built
    for it) and wherever the weights say nothing."""
    weights = _default_weights(name)
    keywords = getattr(getattr(weights, "transforms", None), "keywords", {})
    side = 224 if name.startswith(_FIXED_224) else _side(keywords.get("crop_size", 224))
    return (3, side, side)


@functools.lru_cache(maxsize=256)
def min_side(name: str) -> int:
    """The smallest input side ``name`` accepts: torchvision's ``meta["min_size"]`` (inception_v3
    75, alexnet 63), at least 32 (every model downsamples by 32); Swin: 32 (it pads windows)."""
    if name.startswith(_FIXED_224):
        return 224
    weights = _default_weights(name)
    meta_min = _side(weights.meta.get("min_size", 1)) if weights is not None else 1
    return 32 if name.startswith("swin") else max(32, meta_min)


def list_zoo() -> list[ZooModel]:
    """Every offered torchvision model, in picker order, with group, label and input size."""
    return [ZooModel(name=m, family=f.key, group=f.title, label=f"{f.title}: {m}",
                     input_shape=native_input(m), note=_NOTES.get(m, ""))
            for m, f in _ordered()]


def zoo_input_problem(name: str, input_shape: tuple[int, ...]) -> str | None:
    """A plain-language reason why ``input_shape`` cannot work for ``name``, or None."""
    if len(input_shape) != 3:
        return "torchvision models take images: give the input as CxHxW, e.g. 3x224x224"
    c, h, w = input_shape
    if c != 3:
        return f"{name} expects 3 input channels (RGB); got {c}"
    if name.startswith("vit_") and (h, w) != (224, 224):
        return f"{name} only accepts 224x224 inputs (fixed position embeddings)"
    if name.startswith("maxvit_") and (h, w) != (224, 224):
        return f"{name} only accepts 224x224 inputs (its attention grid is built for 224)"
    if name.startswith("swin") and (h % 32 or w % 32):
        return f"{name} needs height and width divisible by 32; got {h}x{w}"
    low = min_side(name)
    if min(h, w) < low:
        why = "downsamples by 32; use" if low == 32 else "needs"
        return f"{name} {why} inputs of at least {low}x{low} (got {h}x{w})"
    return None


# -- building on the meta device ---------------------------------------------------------------
# Factories whose values a constructor may read back: RegNet computes its stage widths with
# ``torch.arange(depth) * w_a + w_0`` ... ``.tolist()``, which a meta tensor cannot answer.
_VALUE_FACTORIES = frozenset({torch.arange, torch.tensor, torch.as_tensor, torch.asarray,
                              torch.linspace, torch.logspace, torch.scalar_tensor})
# Weight initialisers: a meta tensor has no values to fill, and their meta kernels are slow
# Python decompositions (skipping them makes a meta build 2-4x faster; shapes are untouched).
_INITIALISERS: frozenset[Callable[..., Any]] = frozenset(
    {getattr(nn.init, n) for n in ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_",
                                   "zeros_", "eye_", "dirac_", "xavier_uniform_",
                                   "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
                                   "orthogonal_", "sparse_")}
    | {torch.Tensor.uniform_, torch.Tensor.normal_, torch.Tensor.zero_, torch.Tensor.fill_}
)


class _MetaBuild(DeviceContext):
    """``torch.device("meta")`` for building models, with value factories on the CPU and weight
    initialisers skipped on meta tensors. Use :func:`_build_on_meta`, which moves the few CPU
    tensors (buffers made with ``torch.arange`` or ``torch.tensor``) to meta afterwards."""

    def __init__(self) -> None:
        super().__init__("meta")

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _INITIALISERS:
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, torch.Tensor) and tensor.is_meta:
                return tensor
        if func in _VALUE_FACTORIES and kwargs.get("device") is None:
            kwargs["device"] = "cpu"
        return super().__torch_function__(func, types, args, kwargs)


def _build_on_meta(make: Callable[[], nn.Module]) -> nn.Module:
    with _MetaBuild():
        model = make()
    if any(not t.is_meta for t in (*model.parameters(), *model.buffers())):
        model = model.to("meta")
    return model


def build_zoo_model(name: str, num_classes: int = 1000,
                    device: torch.device | str | None = None) -> nn.Module:
    """torchvision model ``name`` with random weights (``weights=None``) and ``num_classes``.

    ``device="meta"`` builds without allocating or initialising weights (fast, for analysis);
    the architecture, and so every count, is the one torchvision builds on the CPU.
    """
    if not is_zoo_model(name):
        raise UnknownNameError(
            f"unknown torchvision model {name!r}; try one of: {', '.join(zoo_names()[:12])}..."
        )
    if num_classes < 1:
        raise PlaygroundError("num_classes must be at least 1")
    kwargs: dict[str, Any] = {"weights": None, "num_classes": num_classes,
                              **_BUILD_KWARGS.get(name, {})}
    if device is not None and torch.device(device).type == "meta":
        return _build_on_meta(lambda: torchvision.models.get_model(name, **kwargs))
    if device is not None:
        with torch.device(device):
            return torchvision.models.get_model(name, **kwargs)
    return torchvision.models.get_model(name, **kwargs)
