"""Registries of layer building blocks: activations, normalisations and initialisations.

Specs store names; these tables turn names into modules or init functions (TF Playground's
``"relu" -> Activations.RELU``, torchvision's model registry). No ``eval`` anywhere.

Initialisations follow the papers PyTorch cites in ``torch.nn.init``: Xavier/Glorot (Glorot &
Bengio 2010), Kaiming/He (He et al. 2015, ``fan_in``/``fan_out`` for ReLU gain), orthogonal
(Saxe et al. 2013). "default" keeps PyTorch's own layer init (Kaiming-uniform with a = sqrt(5)).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from playground.registry import Registry

ACTIVATIONS: Registry[Callable[[], nn.Module]] = Registry("activation")
ACTIVATIONS.register("relu", lambda: nn.ReLU(inplace=True), "max(0, x): no saturation for x > 0")
ACTIVATIONS.register(
    "leaky_relu", lambda: nn.LeakyReLU(0.01, inplace=True), "x for x > 0, 0.01x otherwise"
)
ACTIVATIONS.register("elu", lambda: nn.ELU(inplace=True), "x for x > 0, exp(x) - 1 otherwise")
ACTIVATIONS.register("gelu", nn.GELU, "x * Phi(x), used by transformers")
ACTIVATIONS.register("silu", lambda: nn.SiLU(inplace=True), "x * sigmoid(x), a.k.a. swish")
ACTIVATIONS.register("mish", lambda: nn.Mish(inplace=True), "x * tanh(softplus(x))")
ACTIVATIONS.register("tanh", nn.Tanh, "saturates at +-1; derivative at most 1")
ACTIVATIONS.register("sigmoid", nn.Sigmoid, "saturates at 0 and 1; derivative at most 0.25")
ACTIVATIONS.register("identity", nn.Identity, "no non-linearity (the net collapses to linear)")

# Some activations are not worth a gain in nn.init.calculate_gain; map to the nearest one.
_GAIN_NAME = {
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "elu": "relu",
    "gelu": "relu",
    "silu": "relu",
    "mish": "relu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "identity": "linear",
}


def make_activation(name: str) -> nn.Module:
    return ACTIVATIONS.get(name)()


# Norm builders take (num_features, groups, spatial) and return a module; ``spatial`` is False
# for features after a linear layer.
NormBuilder = Callable[[int, int, bool], nn.Module | None]
NORMS: Registry[NormBuilder] = Registry("normalisation")
NORMS.register("none", lambda c, g, spatial: None, "no normalisation")
NORMS.register(
    "batch",
    lambda c, g, spatial: nn.BatchNorm2d(c) if spatial else nn.BatchNorm1d(c),
    "batch norm (Ioffe & Szegedy 2015): per-channel statistics over the batch",
)
NORMS.register(
    "group",
    lambda c, g, spatial: nn.GroupNorm(g, c),
    "group norm (Wu & He 2018): statistics over channel groups, independent of batch size",
)
NORMS.register(
    "layer",
    lambda c, g, spatial: nn.GroupNorm(1, c) if spatial else nn.LayerNorm(c),
    "layer norm (Ba et al. 2016): statistics over all features of one sample",
)
NORMS.register(
    "instance",
    lambda c, g, spatial: nn.GroupNorm(c, c) if spatial else nn.LayerNorm(c),
    "instance norm: statistics per sample and channel (as group norm with one channel a group)",
)


def make_norm(name: str, num_features: int, groups: int, spatial: bool) -> nn.Module | None:
    return NORMS.get(name)(num_features, groups, spatial)


def norm_is_affine_shift(name: str) -> bool:
    """True when the norm subtracts a per-channel mean, making a conv bias redundant."""
    return name in {"batch", "group", "layer", "instance"}


# Init functions take (weight, activation name, std) and fill the weight in place.
InitFn = Callable[[nn.Parameter, str, float], None]
INITS: Registry[InitFn | None] = Registry("initialisation")
INITS.register("default", None, "PyTorch's own default (Kaiming-uniform, a = sqrt(5))")
INITS.register(
    "kaiming_normal",
    lambda w, act, std: nn.init.kaiming_normal_(
        w, mode="fan_in", nonlinearity="leaky_relu" if act == "leaky_relu" else "relu"
    ),
    "He normal: N(0, 2/fan_in), keeps ReLU activations' variance constant",
)
INITS.register(
    "kaiming_uniform",
    lambda w, act, std: nn.init.kaiming_uniform_(
        w, mode="fan_in", nonlinearity="leaky_relu" if act == "leaky_relu" else "relu"
    ),
    "He uniform: U(-b, b) with b = sqrt(6/fan_in)",
)
INITS.register(
    "xavier_normal",
    lambda w, act, std: nn.init.xavier_normal_(
        w, gain=nn.init.calculate_gain(_GAIN_NAME.get(act, "linear"))
    ),
    "Glorot normal: N(0, 2/(fan_in + fan_out)) x gain",
)
INITS.register(
    "xavier_uniform",
    lambda w, act, std: nn.init.xavier_uniform_(
        w, gain=nn.init.calculate_gain(_GAIN_NAME.get(act, "linear"))
    ),
    "Glorot uniform: U(-b, b), b = gain * sqrt(6/(fan_in + fan_out))",
)
INITS.register(
    "normal",
    lambda w, act, std: nn.init.normal_(w, 0.0, std),
    "N(0, std^2) with a fixed std: too small vanishes, too large explodes",
)
INITS.register("zeros", lambda w, act, std: nn.init.zeros_(w), "all zeros: every unit stays equal")
INITS.register(
    "orthogonal",
    lambda w, act, std: nn.init.orthogonal_(
        w, gain=nn.init.calculate_gain(_GAIN_NAME.get(act, "linear"))
    ),
    "a random orthogonal matrix (Saxe et al. 2013) x gain",
)


def init_layer(module: nn.Module, init: str, activation: str, std: float) -> None:
    """Initialise a conv/linear ``module`` in place; biases go to zero unless init is default."""
    fn = INITS.get(init)
    if fn is None:
        return
    weight = getattr(module, "weight", None)
    if weight is None or weight.is_meta:
        return
    fn(weight, activation, std)
    bias = getattr(module, "bias", None)
    if bias is not None:
        nn.init.zeros_(bias)
