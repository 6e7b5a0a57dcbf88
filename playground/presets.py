"""Classic architectures as specs (not hand-written modules), each with what it teaches.

References for the exact layouts:
- LeNet-5: LeCun et al. 1998, "Gradient-based learning applied to document recognition"
  (1x32x32 input, tanh, average pooling; C5 is a 5x5 convolution to 120 maps, F6 has 84 units).
- VGG-11/13/16/19: Simonyan & Zisserman 2015, configurations A/B/D/E; torchvision ``vgg.py``
  (conv bias kept with batch norm, adaptive average pool to 7x7, classifier 4096-4096).
- ResNet-18/34/50/101/152: He et al. 2016; torchvision ``resnet.py`` ("v1.5": the bottleneck's
  stride sits on its 3x3 convolution).
- CIFAR ResNet-20/32/56: He et al. 2016, section 4.2: a 3x3 stem of 16 maps, three stages of
  n = (depth - 2) / 6 basic blocks at widths 16/32/64, option-A (zero-padding) shortcuts;
  0.27 M / 0.46 M / 0.85 M parameters. Their "plain" twins drop the shortcuts.

With ``num_classes=1000`` at 3x224x224 the VGG and ResNet presets have exactly torchvision's
parameter counts and fvcore MACs (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from playground.registry import Registry
from playground.spec import (
    Defaults,
    HeadSpec,
    InputSpec,
    NetworkSpec,
    PoolSpec,
    StageSpec,
    StemSpec,
)

GROUPS = {
    "starter": "Starters",
    "classic": "Classic networks",
    "cifar": "CIFAR-size networks (32x32)",
    "broken": "Broken on purpose (and their fixes)",
}


@dataclass(frozen=True)
class Preset:
    """A named spec factory. ``make(num_classes, input)`` lets callers re-target a preset."""

    name: str
    title: str
    group: str
    teaches: str
    make: Callable[..., NetworkSpec]
    dataset: str = "shapes"

    def spec(self, num_classes: int | None = None, input: InputSpec | None = None) -> NetworkSpec:
        spec = self.make()
        update: dict[str, object] = {}
        if num_classes is not None:
            update["num_classes"] = num_classes
        if input is not None:
            update["input"] = input
        return spec.model_copy(update=update) if update else spec


PRESETS: Registry[Preset] = Registry("preset")


def _add(name: str, title: str, group: str, teaches: str, dataset: str = "shapes"):
    def deco(fn: Callable[[], NetworkSpec]) -> Callable[[], NetworkSpec]:
        def make() -> NetworkSpec:
            return fn().model_copy(update={"name": name, "description": teaches})

        PRESETS.register(name, Preset(name, title, group, teaches, make, dataset), teaches)
        return fn

    return deco


def get_preset(name: str, **kwargs: object) -> NetworkSpec:
    """The spec of preset ``name`` (``num_classes=``/``input=`` re-target it)."""
    return PRESETS.get(name).spec(**kwargs)  # type: ignore[arg-type]


def list_presets() -> list[Preset]:
    return [PRESETS.get(n) for n in PRESETS.names()]


# -- starters --------------------------------------------------------------------------------
@_add("small_cnn", "Small CNN (starter)", "starter",
      "Two conv stages with batch norm and ReLU, then global average pooling: trains on the "
      "shapes data set in under a minute on a laptop CPU.")
def _small_cnn() -> NetworkSpec:
    return NetworkSpec(
        input=InputSpec(channels=3, height=32, width=32),
        num_classes=10,
        stages=(
            StageSpec(block="conv", depth=2, width=32, pool=PoolSpec(kind="max", kernel=2)),
            StageSpec(block="conv", depth=2, width=64, pool=PoolSpec(kind="max", kernel=2)),
        ),
        head=HeadSpec(pool="avg"),
    )


@_add("mlp_points", "MLP for 2-D points", "starter",
      "A small tanh MLP for the 2-D point sets (spirals, moons, XOR), as TensorFlow Playground.",
      dataset="spirals")
def _mlp_points() -> NetworkSpec:
    return NetworkSpec(
        input=InputSpec(channels=2, height=1, width=1),
        num_classes=2,
        stages=(StageSpec(block="linear", depth=3, width=16),),
        defaults=Defaults(activation="tanh", norm="none"),
        head=HeadSpec(pool="flatten"),
    )


# -- classic -----------------------------------------------------------------------------------
@_add("lenet5", "LeNet-5 (1998)", "classic",
      "The original CNN: 5x5 convolutions, tanh and average pooling on 32x32 digits. 61,706 "
      "parameters; C5 sees the whole 32x32 input (receptive field 32).", dataset="digits")
def _lenet5() -> NetworkSpec:
    avg = PoolSpec(kind="avg", kernel=2)
    return NetworkSpec(
        input=InputSpec(channels=1, height=32, width=32),
        num_classes=10,
        stages=(
            StageSpec(block="conv", width=6, kernel=5, padding=0, pool=avg),
            StageSpec(block="conv", width=16, kernel=5, padding=0, pool=avg),
            StageSpec(block="conv", width=120, kernel=5, padding=0),
        ),
        defaults=Defaults(activation="tanh", norm="none"),
        head=HeadSpec(pool="flatten", hidden=(84,)),
    )


_VGG_DEPTHS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


def vgg_spec(depth: int, batch_norm: bool, num_classes: int = 1000,
             input: InputSpec | None = None) -> NetworkSpec:
    """VGG-``depth`` (configuration A/B/D/E) as torchvision builds it."""
    widths = (64, 128, 256, 512, 512)
    pool = PoolSpec(kind="max", kernel=2)
    return NetworkSpec(
        input=input or InputSpec(channels=3, height=224, width=224),
        num_classes=num_classes,
        stages=tuple(
            StageSpec(block="conv", depth=d, width=w, kernel=3, pool=pool)
            for d, w in zip(_VGG_DEPTHS[depth], widths, strict=True)
        ),
        defaults=Defaults(activation="relu", norm="batch" if batch_norm else "none", bias=True),
        head=HeadSpec(pool="adaptive_avg", pool_size=7, hidden=(4096, 4096), dropout=0.5),
    )


for _d in (11, 13, 16, 19):
    for _bn in (False, True):
        _name = f"vgg{_d}" + ("_bn" if _bn else "")
        _add(
            _name,
            f"VGG-{_d}" + (" with batch norm" if _bn else ""),
            "classic",
            f"Stacks of 3x3 convolutions (Simonyan & Zisserman 2015). Most of VGG-{_d}'s "
            "parameters sit in the first 4096-unit classifier layer (25,088 x 4,096)."
            + (" Batch norm after every convolution makes it train without careful init."
               if _bn else ""),
        )(lambda d=_d, bn=_bn: vgg_spec(d, bn))

_RESNET = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def resnet_spec(depth: int, num_classes: int = 1000, input: InputSpec | None = None,
                residual: bool = True) -> NetworkSpec:
    """ResNet-``depth`` as torchvision builds it (v1.5 bottleneck)."""
    block, depths = _RESNET[depth]
    return NetworkSpec(
        input=input or InputSpec(channels=3, height=224, width=224),
        num_classes=num_classes,
        stem=StemSpec(width=64, kernel=7, stride=2,
                      pool=PoolSpec(kind="max", kernel=3, stride=2, padding=1)),
        stages=tuple(
            StageSpec(block=block, depth=n, width=w, stride=s, residual=residual)  # type: ignore[arg-type]
            for n, w, s in zip(depths, (64, 128, 256, 512), (1, 2, 2, 2), strict=True)
        ),
        defaults=Defaults(activation="relu", norm="batch", init="kaiming_normal"),
        head=HeadSpec(pool="avg"),
    )


for _d in _RESNET:
    _add(
        f"resnet{_d}",
        f"ResNet-{_d}",
        "classic",
        f"Residual learning (He et al. 2016): each block adds its input back, so gradients "
        f"reach the first layers of a {_d}-layer network."
        + (" Bottleneck blocks (1x1 -> 3x3 -> 1x1) keep the 3x3 convolutions cheap."
           if _d >= 50 else ""),
    )(lambda d=_d: resnet_spec(d))


# -- CIFAR ---------------------------------------------------------------------------------------
def cifar_resnet_spec(depth: int, residual: bool = True, num_classes: int = 10) -> NetworkSpec:
    """He et al. 2016's CIFAR ResNet-``depth`` (depth = 6n + 2), option-A shortcuts."""
    n = (depth - 2) // 6
    return NetworkSpec(
        input=InputSpec(channels=3, height=32, width=32),
        num_classes=num_classes,
        stem=StemSpec(width=16, kernel=3, stride=1),
        stages=tuple(
            StageSpec(block="basic", depth=n, width=w, stride=s, residual=residual,
                      shortcut="pad")
            for w, s in ((16, 1), (32, 2), (64, 2))
        ),
        defaults=Defaults(activation="relu", norm="batch", init="kaiming_normal"),
        head=HeadSpec(pool="avg"),
    )


for _d in (20, 32, 56):
    _add(
        f"resnet{_d}_cifar",
        f"ResNet-{_d} (CIFAR)",
        "cifar",
        f"He et al.'s {_d}-layer CIFAR network: three stages of basic blocks at 16/32/64 "
        "channels with identity shortcuts. Compare it with its plain twin.",
    )(lambda d=_d: cifar_resnet_spec(d))
    _add(
        f"plain{_d}_cifar",
        f"Plain-{_d} (CIFAR, no shortcuts)",
        "cifar",
        f"ResNet-{_d} without its shortcuts. Deeper plain networks train worse than shallower "
        "ones (the degradation problem), even with batch norm.",
    )(lambda d=_d: cifar_resnet_spec(d, residual=False))


# -- broken on purpose ---------------------------------------------------------------------------
@_add("deep_sigmoid_mlp", "Deep sigmoid MLP (vanishing gradients)", "broken",
      "Ten sigmoid layers without normalisation. The sigmoid's slope is at most 0.25, so the "
      "gradient shrinks layer after layer: the first layers barely learn.", dataset="digits")
def _deep_sigmoid_mlp() -> NetworkSpec:
    return NetworkSpec(
        input=InputSpec(channels=1, height=16, width=16),
        num_classes=10,
        stages=(StageSpec(block="linear", depth=10, width=64),),
        defaults=Defaults(activation="sigmoid", norm="none"),
        head=HeadSpec(pool="flatten"),
    )


@_add("deep_relu_bn_mlp", "Deep ReLU + batch-norm MLP (the fix)", "broken",
      "The deep sigmoid MLP with ReLU, batch norm and He init: gradients keep their size through "
      "all ten layers.", dataset="digits")
def _deep_relu_bn_mlp() -> NetworkSpec:
    return _deep_sigmoid_mlp().model_copy(
        update={"defaults": Defaults(activation="relu", norm="batch", init="kaiming_normal")}
    )


@_add("deep_sigmoid_cnn", "Deep sigmoid CNN (vanishing gradients)", "broken",
      "Twelve sigmoid conv layers without normalisation: the first convolutions get almost no "
      "gradient and the network learns slowly, if at all.")
def _deep_sigmoid_cnn() -> NetworkSpec:
    pool = PoolSpec(kind="max", kernel=2)
    return NetworkSpec(
        input=InputSpec(channels=3, height=32, width=32),
        num_classes=10,
        stages=(
            StageSpec(block="conv", depth=4, width=32, pool=pool),
            StageSpec(block="conv", depth=4, width=64, pool=pool),
            StageSpec(block="conv", depth=4, width=64),
        ),
        defaults=Defaults(activation="sigmoid", norm="none"),
        head=HeadSpec(pool="avg"),
    )


@_add("deep_relu_bn_cnn", "Deep ReLU + batch-norm CNN (the fix)", "broken",
      "The deep sigmoid CNN with ReLU, batch norm and He init: the same depth now trains.")
def _deep_relu_bn_cnn() -> NetworkSpec:
    return _deep_sigmoid_cnn().model_copy(
        update={"defaults": Defaults(activation="relu", norm="batch", init="kaiming_normal")}
    )


@_add("deep_residual_sigmoid_cnn", "Deep sigmoid CNN with residuals (another fix)", "broken",
      "The deep sigmoid CNN with a shortcut around every layer: the identity path carries the "
      "gradient past the saturating sigmoids.")
def _deep_residual_sigmoid_cnn() -> NetworkSpec:
    spec = _deep_sigmoid_cnn()
    return spec.with_stages([s.model_copy(update={"residual": True}) for s in spec.stages])
