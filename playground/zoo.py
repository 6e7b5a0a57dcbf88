"""torchvision's classification models by name, for analysis and training.

Models come from ``torchvision.models.get_model(name, weights=None, num_classes=...)``: random
weights, never a download. Each family lists its members and the input size its papers use;
ViT and Swin variants fix or constrain the input size (ViT: exactly ``image_size``; Swin:
multiples of 32), which :func:`zoo_input_problem` checks before any tensor work.

References: EfficientNet (Tan & Le 2019, Google Brain), MobileNet-V3 (Howard et al. 2019,
Google), ConvNeXt (Liu et al. 2022, Meta AI), ViT (Dosovitskiy et al. 2021, Google Research),
Swin Transformer (Liu et al. 2021, Microsoft Research), ResNet (He et al. 2016), VGG (Simonyan &
Zisserman 2015).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from playground.errors import PlaygroundError, UnknownNameError


@dataclass(frozen=True)
class ZooFamily:
    key: str
    title: str
    members: tuple[str, ...]
    teaches: str


FAMILIES: tuple[ZooFamily, ...] = (
    ZooFamily("resnet", "ResNet", ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                                   "resnext50_32x4d", "wide_resnet50_2"),
              "Residual connections let very deep networks train."),
    ZooFamily("vgg", "VGG", ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn",
                             "vgg19", "vgg19_bn"),
              "Plain stacks of 3x3 convolutions; most parameters in the classifier."),
    ZooFamily("efficientnet", "EfficientNet",
              (*(f"efficientnet_b{i}" for i in range(8)), "efficientnet_v2_s",
               "efficientnet_v2_m", "efficientnet_v2_l"),
              "Compound scaling of depth, width and resolution; depthwise MBConv blocks."),
    ZooFamily("mobilenet", "MobileNet", ("mobilenet_v2", "mobilenet_v3_small",
                                         "mobilenet_v3_large"),
              "Depthwise-separable convolutions: few parameters and MACs for phones."),
    ZooFamily("convnext", "ConvNeXt", ("convnext_tiny", "convnext_small", "convnext_base",
                                       "convnext_large"),
              "A ResNet modernised with transformer-era choices (7x7 depthwise, LayerNorm, GELU)."),
    ZooFamily("vit", "Vision Transformer", ("vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32",
                                            "vit_h_14"),
              "Images as sequences of 16x16 patches fed to a transformer encoder."),
    ZooFamily("swin", "Swin Transformer", ("swin_t", "swin_s", "swin_b", "swin_v2_t",
                                           "swin_v2_s", "swin_v2_b"),
              "Attention inside shifted local windows; a hierarchy of feature maps like a CNN."),
    ZooFamily("other", "Other classics", ("alexnet", "googlenet", "densenet121",
                                          "shufflenet_v2_x1_0", "squeezenet1_1", "mnasnet1_0"),
              "Milestones between AlexNet (2012) and today."),
)

# Native input sizes where they differ from 224 (torchvision's weight transforms).
_NATIVE = {
    "efficientnet_b1": 240, "efficientnet_b2": 260, "efficientnet_b3": 300,
    "efficientnet_b4": 380, "efficientnet_b5": 456, "efficientnet_b6": 528,
    "efficientnet_b7": 600, "efficientnet_v2_s": 384, "efficientnet_v2_m": 480,
    "efficientnet_v2_l": 480, "swin_v2_t": 256, "swin_v2_s": 256,
    "swin_v2_b": 256,
}


def zoo_names() -> list[str]:
    """Every supported name that this torchvision provides."""
    available = set(torchvision.models.list_models(module=torchvision.models))
    return [m for f in FAMILIES for m in f.members if m in available]


def is_zoo_model(name: str) -> bool:
    return name in zoo_names()


def family_of(name: str) -> ZooFamily | None:
    return next((f for f in FAMILIES if name in f.members), None)


def native_input(name: str) -> tuple[int, int, int]:
    side = _NATIVE.get(name, 224)
    return (3, side, side)


def zoo_input_problem(name: str, input_shape: tuple[int, ...]) -> str | None:
    """A plain-language reason why ``input_shape`` cannot work for ``name``, or None."""
    if len(input_shape) != 3:
        return "torchvision models take images: give the input as CxHxW, e.g. 3x224x224"
    c, h, w = input_shape
    if c != 3:
        return f"{name} expects 3 input channels (RGB); got {c}"
    if name.startswith("vit_") and (h, w) != (224, 224):
        return f"{name} only accepts 224x224 inputs (fixed position embeddings)"
    if name.startswith("swin") and (h % 32 or w % 32):
        return f"{name} needs height and width divisible by 32; got {h}x{w}"
    if min(h, w) < 32:
        return f"{name} downsamples by 32; use inputs of at least 32x32 (got {h}x{w})"
    if name in {"alexnet", "googlenet"} and min(h, w) < 64:
        return f"{name} needs inputs of at least 64x64"
    return None


def build_zoo_model(name: str, num_classes: int = 1000,
                    device: torch.device | str | None = None) -> nn.Module:
    """torchvision model ``name`` with random weights (``weights=None``) and ``num_classes``.

    ``device="meta"`` builds without allocating weights (fast, for analysis).
    """
    if not is_zoo_model(name):
        raise UnknownNameError(
            f"unknown torchvision model {name!r}; try one of: {', '.join(zoo_names()[:12])}..."
        )
    if num_classes < 1:
        raise PlaygroundError("num_classes must be at least 1")
    kwargs: dict[str, object] = {"weights": None, "num_classes": num_classes}
    if name == "googlenet":
        kwargs["aux_logits"] = False
        kwargs["init_weights"] = False
    if device is not None:
        with torch.device(device):
            return torchvision.models.get_model(name, **kwargs)
    return torchvision.models.get_model(name, **kwargs)
