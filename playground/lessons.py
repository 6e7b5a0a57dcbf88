"""Short lessons, each with a small figure whose data is measured on the spot.

A :class:`Lesson` holds accurate text (a paragraph or two, Markdown), the formula where there is
one (LaTeX lines for ``st.latex``), the sources it follows, a figure function that returns plain
data in well under a second on a laptop CPU, the figure's controls (:class:`Control`), and the
preset and experiment suite it links to. :func:`lesson_figure` checks the controls' values and calls
the figure function; ``ui/learn_charts.py`` draws the result.

Every number a figure shows is computed here from the playground's own code (the builder,
:func:`playground.train.gradient_profile`, the analysis, the optimiser and schedule registries,
the trainer), never copied from the seed articles, which contain errors. Fixed numbers in the
texts are checked by the tests against the analysis: VGG-16 has 138,357,544 parameters and
VGG-19 143,667,240 (1000 classes); ResNet-50 25,557,032.

Sources, by lesson: chain rule and vanishing gradients (Hochreiter 1991; Bengio, Simard &
Frasconi 1994; Glorot & Bengio 2010); ReLU (Glorot, Bordes & Bengio 2011); initialisation
(Glorot & Bengio 2010; He et al. 2015, "Delving deep into rectifiers"); batch norm (Ioffe &
Szegedy 2015; Santurkar et al. 2018); residual networks (He et al. 2016; Balduzzi et al. 2017;
Yang et al. 2019, "A mean field theory of batch normalization"); clipping (Pascanu, Mikolov &
Bengio 2013); schedules (Loshchilov & Hutter 2017; Goyal et al. 2017); optimisers (Polyak
1964; Sutskever et al. 2013; Duchi et al. 2011; Hinton's lecture 6e 2012; Kingma & Ba 2015;
Loshchilov & Hutter 2019); batch size (Goyal et al. 2017; Keskar et al. 2017); output size and
receptive field (PyTorch's Conv2d documentation; Araujo, Norris & Sim, Distill 2019; Simonyan &
Zisserman 2015); costs (fvcore's counting conventions; Tan & Le 2019).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from playground.analysis import training_memory
from playground.build import build_model, conv_out
from playground.errors import ConfigError, PlaygroundError
from playground.layers import ACTIVATIONS
from playground.optim import OPTIMIZERS, SCHEDULES, schedule_factor
from playground.presets import PRESETS, get_preset
from playground.registry import Registry
from playground.spec import Defaults, HeadSpec, InputSpec, NetworkSpec, StageSpec
from playground.targets import analyse_spec, analyse_zoo, final_receptive_field
from playground.train import TrainSettings, gradient_profile, train

__all__ = [
    "LESSONS",
    "Control",
    "Lesson",
    "activation_curves",
    "batch_noise",
    "batchnorm_signal",
    "clipping_demo",
    "cost_comparison",
    "get_lesson",
    "gradient_depth_profiles",
    "init_signal",
    "lesson_figure",
    "optimizer_paths",
    "output_size_table",
    "receptive_field_growth",
    "residual_profiles",
    "schedule_curves",
]


# -- helpers -------------------------------------------------------------------------------------
def _mlp(activation: str, norm: str, init: str, depth: int, width: int, in_features: int,
         num_classes: int = 10) -> NetworkSpec:
    return NetworkSpec(
        name=f"{depth}-layer {activation} MLP",
        input=InputSpec(channels=in_features, height=1, width=1),
        num_classes=num_classes,
        stages=(StageSpec(block="linear", depth=depth, width=width),),
        defaults=Defaults(activation=activation, norm=norm, init=init),
        head=HeadSpec(pool="flatten"),
    )


def _batch(n: int, features: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard-normal inputs and uniform random labels: the network at initialisation does not
    care what the data mean, only about their scale."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, features, generator=g), torch.randint(0, classes, (n,), generator=g)


def _ratio(values: list[float]) -> float:
    return values[0] / values[-1] if values and values[-1] > 0 else math.nan


# -- 1. vanishing and exploding gradients --------------------------------------------------------
GRADIENT_LINES = (
    ("sigmoid (PyTorch default init)", "sigmoid", "none", "default"),
    ("tanh (Xavier init)", "tanh", "none", "xavier_normal"),
    ("ReLU (He init)", "relu", "none", "kaiming_normal"),
    ("ReLU + batch norm (He init)", "relu", "batch", "kaiming_normal"),
)


def gradient_depth_profiles(depth: int = 10, width: int = 32, batch: int = 64,
                            seed: int = 0) -> dict[str, Any]:
    """Per-layer weight-gradient norm of fresh ``depth``-layer MLPs (plus the classifier) for
    one batch of random inputs, for each line of :data:`GRADIENT_LINES`.

    Uses :func:`playground.train.gradient_profile`: the network is built with
    ``torch.manual_seed(seed)`` as the trainer builds it, in training mode. ``ratio`` is the
    first layer's norm over the last layer's.
    """
    x, y = _batch(batch, 16, 10, seed)
    lines = []
    for label, act, norm, init in GRADIENT_LINES:
        spec = _mlp(act, norm, init, depth, width, 16)
        p = gradient_profile(spec, (x, y), device="cpu")
        lines.append({"label": label, "layers": p["labels"], "grad_norm": p["grad_norm"],
                      "ratio": _ratio(p["grad_norm"])})
    return {"depth": depth, "width": width, "batch": batch, "lines": lines}


# -- 2. activations ------------------------------------------------------------------------------
def activation_curves(names: tuple[str, ...] = ("sigmoid", "tanh", "relu"),
                      x_min: float = -6.0, x_max: float = 6.0, n: int = 241) -> dict[str, Any]:
    """Each activation's value and slope on a grid (slopes by autograd through the same
    modules the networks use). ``max_slope`` is the largest slope on the grid."""
    x = torch.linspace(x_min, x_max, n)
    curves = []
    for name in names:
        module = ACTIVATIONS.get(name)()
        xi = x.clone().requires_grad_(True)
        yv = module(xi.clone())  # clone: in-place activations must not touch the leaf
        (slope,) = torch.autograd.grad(yv.sum(), xi)
        curves.append({"name": name, "y": yv.detach().tolist(), "slope": slope.tolist(),
                       "max_slope": float(slope.max())})
    return {"x": x.tolist(), "curves": curves}


# -- 3. initialisation ---------------------------------------------------------------------------
INIT_LINES: tuple[tuple[str, Callable[[torch.Tensor, str], None]], ...] = (
    ("N(0, 0.01²)", lambda w, act: nn.init.normal_(w, 0.0, 0.01)),
    ("N(0, 1)", lambda w, act: nn.init.normal_(w, 0.0, 1.0)),
    ("Xavier, gain 1 (Glorot & Bengio)", lambda w, act: nn.init.xavier_normal_(w)),
    ("He / Kaiming (fan_in)", lambda w, act: nn.init.kaiming_normal_(w, nonlinearity="relu")),
)


@torch.no_grad()
def init_signal(activation: str = "relu", depth: int = 10, width: int = 256, batch: int = 256,
                seed: int = 0) -> dict[str, Any]:
    """Standard deviation of each layer's output, ``h_l = act(W_l h_{l-1})`` (no bias), for a
    batch of standard-normal inputs, under each initialisation of :data:`INIT_LINES`.

    Values can be 0 (signal gone), inf or NaN (overflow); the chart skips them.
    """
    act = ACTIVATIONS.get(activation)()
    lines = []
    for label, init in INIT_LINES:
        g = torch.Generator().manual_seed(seed)
        h = torch.randn(batch, width, generator=g)
        torch.manual_seed(seed)
        stds = []
        for _ in range(depth):
            w = torch.empty(width, width)
            init(w, activation)
            h = act(h @ w.T)
            stds.append(float(h.std()))
        lines.append({"label": label, "std": stds})
    return {"activation": activation, "depth": depth, "width": width, "lines": lines}


# -- 4. batch normalisation ----------------------------------------------------------------------
def _act_stds(spec: NetworkSpec, x: torch.Tensor, seed: int) -> list[float]:
    """Standard deviation of every activation module's output in one training-mode forward."""
    torch.manual_seed(seed)
    model = build_model(spec)
    model.train()
    stds: list[float] = []
    hooks = [m.register_forward_hook(lambda mod, a, out: stds.append(float(out.std())))
             for n, m in model.named_modules() if n.endswith(".act")]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return stds


def batchnorm_signal(depth: int = 12, width: int = 256, batch: int = 256,
                     seed: int = 0) -> dict[str, Any]:
    """Output std of each ReLU layer of a deep MLP with PyTorch's default init
    (Kaiming-uniform with a = sqrt(5): Var(W) = 1 / (3 fan_in)), without and with batch norm."""
    x, _ = _batch(batch, 64, 10, seed)  # 64 input features (the most a spec input takes)
    lines = []
    for label, norm in (("ReLU, no normalisation", "none"), ("ReLU + batch norm", "batch")):
        spec = _mlp("relu", norm, "default", depth, width, 64)
        lines.append({"label": label, "std": _act_stds(spec, x, seed)})
    return {"depth": depth, "width": width, "lines": lines}


# -- 5. residual connections ---------------------------------------------------------------------
def residual_profiles(depth: int = 56, side: int = 16, batch: int = 8,
                      seed: int = 0) -> dict[str, Any]:
    """Per-layer gradient norm at initialisation of He et al.'s CIFAR plain and residual
    networks (presets ``plainN_cifar`` / ``resnetN_cifar``) on one random batch of
    3 x ``side`` x ``side`` images (``side`` 16 instead of 32 keeps it fast; the picture is
    the same)."""
    if depth not in (20, 32, 56):
        raise ConfigError("depth must be 20, 32 or 56 (the CIFAR presets)")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, side, side, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    lines = []
    for label, name in ((f"Plain-{depth} (no shortcuts)", f"plain{depth}_cifar"),
                        (f"ResNet-{depth}", f"resnet{depth}_cifar")):
        spec = get_preset(name, input=InputSpec(channels=3, height=side, width=side))
        p = gradient_profile(spec, (x, y), device="cpu")
        lines.append({"label": label, "preset": name, "layers": p["labels"],
                      "grad_norm": p["grad_norm"], "ratio": _ratio(p["grad_norm"]),
                      "spread": max(p["grad_norm"]) / max(min(p["grad_norm"]), 1e-30)})
    return {"depth": depth, "side": side, "lines": lines}


# -- 6. gradient clipping ------------------------------------------------------------------------
def clipping_demo(lr: float = 2.0, clip: float = 1.0, steps: int = 100,
                  seed: int = 0) -> dict[str, Any]:
    """Train a 6-layer ReLU MLP (He init, no normalisation) on the ``circles`` points with
    plain SGD at a high learning rate, without and with clipping the gradient norm to
    ``clip``. Returns each run's gradient norm (before clipping) and loss per step, status and
    message (from :func:`playground.train.train`)."""
    from playground.data import load_dataset

    data = load_dataset("circles", input_shape=(2,), n_train=512, n_val=256, seed=seed)
    spec = _mlp("relu", "none", "kaiming_normal", 6, 32, 2, num_classes=2)
    runs = []
    for label, clip_norm in (("no clipping", None), (f"clip norm to {clip:g}", clip)):
        records: list[dict[str, Any]] = []
        settings = TrainSettings(dataset="circles", n_train=512, n_val=256, optimizer="sgd",
                                 lr=lr, steps=steps, batch_size=64, clip_norm=clip_norm,
                                 seed=seed, data_seed=seed, device="cpu", eval_every=steps,
                                 stats_every=0)
        result = train(spec, settings, emit=records.extend, data=data)

        def series(name: str, recs: list[dict[str, Any]] = records) -> tuple[list, list]:
            pts = [(r["step"], r["value"]) for r in recs if r["name"] == name]
            return [p[0] for p in pts], [p[1] for p in pts]

        steps_gn, gn = series("grad_norm")
        steps_loss, loss = series("loss")
        runs.append({"label": label, "steps": steps_gn, "grad_norm": gn, "loss_steps": steps_loss,
                     "loss": loss, "status": result.status, "message": result.message,
                     "val_acc": result.summary.get("final_val_acc")})
    return {"lr": lr, "clip": clip, "runs": runs}


# -- 7. learning-rate schedules ------------------------------------------------------------------
def schedule_curves(total: int = 300, base_lr: float = 0.1) -> dict[str, Any]:
    """Learning rate of update ``s = 1..total`` for every schedule of the registry with its
    default parameters (``lr(s) = base_lr * f(s - 1)``, see :mod:`playground.optim`)."""
    curves = []
    for name in SCHEDULES:
        entry = SCHEDULES.get(name)
        curves.append({"name": name, "title": entry.title, "params": dict(entry.params),
                       "lr": [base_lr * schedule_factor(name, t, total) for t in range(total)]})
    return {"steps": list(range(1, total + 1)), "base_lr": base_lr, "curves": curves}


# -- 8. optimisers -------------------------------------------------------------------------------
VALLEY_SCALE = 10.0  # f(x, y) = (x^2 + VALLEY_SCALE * y^2) / 2
VALLEY_START = (-4.0, 1.5)
TOY_LR = {"sgd": 0.15, "momentum": 0.015, "nesterov": 0.015, "rmsprop": 0.05, "adagrad": 1.0,
          "adam": 0.3, "adamw": 0.3}


def _valley(p: torch.Tensor) -> torch.Tensor:
    return 0.5 * (p[0] ** 2 + VALLEY_SCALE * p[1] ** 2)


def optimizer_paths(steps: int = 60) -> dict[str, Any]:
    """The path of each optimiser of the registry on the valley ``(x^2 + 10 y^2) / 2`` from
    ``(-4, 1.5)``, at the learning rate in :data:`TOY_LR` (chosen for this toy problem; the
    registry's ``default_lr`` suits networks, not this). Weight decay is off for all. Also a
    grid of the function for contour lines."""
    paths = []
    for name in OPTIMIZERS:
        entry = OPTIMIZERS.get(name)
        p = nn.Parameter(torch.tensor(VALLEY_START, dtype=torch.float64))
        opt = entry.build([{"params": [p], "weight_decay": 0.0}], TOY_LR[name], None)
        xs, ys, losses = [p[0].item()], [p[1].item()], [float(_valley(p.detach()))]
        for _ in range(steps):
            opt.zero_grad()
            loss = _valley(p)
            loss.backward()
            opt.step()
            xs.append(p[0].item())
            ys.append(p[1].item())
            losses.append(float(_valley(p.detach())))
        paths.append({"name": name, "title": entry.title, "lr": TOY_LR[name], "x": xs, "y": ys,
                      "loss": losses})
    gx = [-4.5 + 9.0 * i / 60 for i in range(61)]
    gy = [-2.0 + 4.0 * i / 40 for i in range(41)]
    z = [[0.5 * (a * a + VALLEY_SCALE * b * b) for a in gx] for b in gy]
    return {"paths": paths, "grid_x": gx, "grid_y": gy, "grid_z": z, "steps": steps}


# -- 9. batch size -------------------------------------------------------------------------------
def batch_noise(n: int = 1024, samples: int = 8, seed: int = 0,
                sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
                ) -> dict[str, Any]:
    """How far mini-batch gradients are from the full-batch gradient, against the batch size.

    A small tanh MLP at initialisation on ``n`` synthetic examples (16 Gaussian features, 4
    classes from a random linear teacher). For each batch size ``B``, ``samples`` batches are
    drawn without replacement; the value is the mean of ``||g_B - g|| / ||g||``. The
    reference line is ``c / sqrt(B)`` fitted at ``B = 1``.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    teacher = torch.randn(16, 4, generator=g)
    y = (x @ teacher).argmax(1)
    torch.manual_seed(seed)
    model = build_model(_mlp("tanh", "none", "xavier_normal", 2, 32, 16, num_classes=4))
    params = [p for p in model.parameters() if p.requires_grad]

    def grad(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(model(xb.reshape(len(xb), 16, 1, 1)), yb)
        return torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss, params)])

    full = grad(x, y)
    errors = []
    for b in sizes:
        errs = []
        for _ in range(samples):
            idx = torch.randperm(n, generator=g)[:b]
            errs.append(float(torch.linalg.vector_norm(grad(x[idx], y[idx]) - full)
                              / torch.linalg.vector_norm(full)))
        errors.append(sum(errs) / len(errs))
    ref = [errors[0] / math.sqrt(b / sizes[0]) for b in sizes]
    return {"sizes": list(sizes), "rel_error": errors, "reference": ref, "n": n}


# -- 10. output size and receptive field ---------------------------------------------------------
COMMON_LAYERS = (
    ("3x3 conv, stride 1, padding 1 ('same')", 3, 1, 1),
    ("3x3 conv, stride 1, no padding", 3, 1, 0),
    ("5x5 conv, stride 1, no padding (LeNet-5)", 5, 1, 0),
    ("3x3 conv, stride 2, padding 1", 3, 2, 1),
    ("7x7 conv, stride 2, padding 3 (ResNet stem)", 7, 2, 3),
    ("2x2 max-pool, stride 2", 2, 2, 0),
    ("3x3 max-pool, stride 2, padding 1 (ResNet stem)", 3, 2, 1),
    ("1x1 conv", 1, 1, 0),
)


def output_size_table(size: int = 32) -> dict[str, Any]:
    """Output side of common layers for an input of ``size`` pixels (PyTorch's formula)."""
    if not 1 <= size <= 4096:
        raise ConfigError("the input size must be 1 to 4096 pixels")
    rows = []
    for label, k, s, p in COMMON_LAYERS:
        out = conv_out(size, k, s, p)
        rows.append({"layer": label, "kernel": k, "stride": s, "padding": p,
                     "input": size, "output": out if out >= 1 else None})
    return {"size": size, "rows": rows}


def receptive_field_growth(preset: str = "vgg16") -> dict[str, Any]:
    """Receptive field and jump after every conv and pool of a preset, from the analysis."""
    spec = get_preset(preset)
    analysis = analyse_spec(spec)
    rows = [{"layer": r.name, "type": r.type, "output": list(r.out_shape),
             "rf": max(r.rf) if r.rf else None, "jump": max(r.jump) if r.jump else None}
            for r in analysis.rows if r.type.startswith(("Conv", "MaxPool", "AvgPool"))]
    rf = final_receptive_field(analysis)
    return {"preset": preset, "title": PRESETS.get(preset).title, "input": list(spec.input.shape),
            "rows": rows, "final_rf": max(rf) if rf else None}


# -- 11. parameters vs FLOPs vs memory -----------------------------------------------------------
def cost_comparison(batch_size: int = 32) -> dict[str, Any]:
    """Parameters, MACs and training memory (Adam, float32, ``batch_size``) of VGG-16,
    ResNet-50 (presets, 3x224x224, 1000 classes) and torchvision's EfficientNet-B0 at 224, from
    the analysis; plus where VGG-16's parameters and MACs sit."""
    models = []
    for label, analysis in (
        ("VGG-16", analyse_spec(get_preset("vgg16"))),
        ("ResNet-50", analyse_spec(get_preset("resnet50"))),
        ("EfficientNet-B0", analyse_zoo("efficientnet_b0", (3, 224, 224), 1000)),
    ):
        linear_params = sum(r.num_params for r in analysis.rows if r.type == "Linear")
        conv_macs = sum(r.macs for r in analysis.rows if r.type.startswith("Conv"))
        models.append({
            "label": label, "params": analysis.num_params, "macs": analysis.macs,
            "flops": analysis.flops, "memory": training_memory(analysis, batch_size, "adam"),
            "linear_params_share": linear_params / analysis.num_params,
            "conv_macs_share": conv_macs / analysis.macs,
        })
    vgg, resnet = models[0], models[1]
    facts = [
        f"VGG-16: {vgg['params']:,} parameters, {vgg['linear_params_share']:.0%} of them in "
        f"its three fully connected layers, which do {1 - vgg['conv_macs_share']:.1%} of its "
        "MACs.",
        f"ResNet-50 has {resnet['params'] / vgg['params']:.0%} of VGG-16's parameters and "
        f"{resnet['macs'] / vgg['macs']:.0%} of its MACs.",
        f"At batch {batch_size} with Adam, saved activations are "
        f"{vgg['memory']['activations'] / vgg['memory']['total']:.0%} of VGG-16's training "
        f"memory estimate and {resnet['memory']['activations'] / resnet['memory']['total']:.0%}"
        " of ResNet-50's.",
    ]
    return {"batch_size": batch_size, "models": models, "facts": facts}


# -- the lessons ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Control:
    """A figure parameter the page offers: a slider over ``options`` (numbers) or a choice."""

    name: str
    label: str
    kind: Literal["slider", "select"]
    default: Any
    options: tuple[Any, ...]
    help: str = ""


@dataclass(frozen=True)
class Lesson:
    id: str
    title: str
    body: str  # Markdown, a paragraph or two
    figure: Callable[..., dict[str, Any]] = field(repr=False)
    caption: str = ""  # what to look at in the figure
    formulas: tuple[str, ...] = ()  # LaTeX, one line each
    controls: tuple[Control, ...] = ()
    preset: str | None = None  # opened on Build by the lesson's button
    experiment: str | None = None  # suite in playground.experiments
    sources: tuple[str, ...] = ()


LESSONS: Registry[Lesson] = Registry("lesson")


def get_lesson(lesson_id: str) -> Lesson:
    return LESSONS.get(lesson_id)


def lesson_figure(lesson_id: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The figure data of a lesson for control values ``params`` (missing ones default).

    Values not offered by the lesson's controls raise :class:`ConfigError`.
    """
    lesson = get_lesson(lesson_id)
    given = dict(params or {})
    known = {c.name: c for c in lesson.controls}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(f"the {lesson.title} figure has no setting {', '.join(unknown)}")
    kwargs = {}
    for name, control in known.items():
        value = given.get(name, control.default)
        if value not in control.options:
            raise ConfigError(f"{control.label} must be one of "
                              f"{', '.join(map(str, control.options))}; got {value!r}")
        kwargs[name] = value
    try:
        return lesson.figure(**kwargs)
    except PlaygroundError:
        raise
    except (RuntimeError, ValueError) as err:  # pragma: no cover - a bug, reported plainly
        raise PlaygroundError(f"the figure could not be computed: {err}") from None


def _lesson(lesson: Lesson) -> None:
    LESSONS.register(lesson.id, lesson, lesson.title)


_lesson(Lesson(
    "gradients", "Vanishing and exploding gradients: the chain rule",
    "Training moves every weight against its gradient, and backpropagation computes the "
    "gradient of the first layers by the chain rule: the gradient reaching layer *l - 1* is "
    "the gradient at layer *l* multiplied by that layer's weights and by the slope of its "
    "activation at the current input. Through *L* layers the gradient is multiplied *L* "
    "times. If the factors are usually smaller than 1 it shrinks exponentially with depth "
    "(**vanishing gradients**) and the first layers hardly learn; if they are larger than 1 "
    "it grows exponentially (**exploding gradients**) and one update can throw the weights to "
    "inf or NaN.\n\n"
    "The sigmoid's slope is at most 1/4, so every sigmoid layer tends to shrink the gradient "
    "unless its weights are large, and large weights push the sigmoid into its flat ends, "
    "where the slope is almost 0. The figure builds fresh networks of the chosen depth and "
    "measures the gradient of every layer's weights for one batch: the sigmoid network's "
    "first layers get a gradient many orders of magnitude smaller than its last, and the gap "
    "grows with depth. ReLU with He initialisation keeps all layers within a small factor "
    "even at 30 layers. Batch norm does at moderate depth, but in a very deep plain stack it "
    "lets the gradient grow towards the input (see the residual lesson).",
    gradient_depth_profiles,
    "Gradient norm of each layer's weights at initialisation, first layer on the left (log "
    "scale). A line falling to the left is the vanishing-gradient picture.",
    (r"\nabla_{h_{l-1}}L = W_l^{\top}\,\mathrm{diag}\big(\sigma'(z_l)\big)\,\nabla_{h_l}L,"
     r"\qquad \sigma'(z)=\sigma(z)\big(1-\sigma(z)\big)\le \tfrac14",
     r"\Rightarrow\quad \|\nabla_{h_1}L\| \le \Big(\prod_{l=2}^{L}\|W_l\|\,"
     r"\max_z\sigma'(z)\Big)\,\|\nabla_{h_L}L\|"),
    (Control("depth", "Hidden layers", "slider", 10, (2, 4, 6, 8, 10, 15, 20, 25, 30)),),
    preset="deep_sigmoid_mlp", experiment="ladder",
    sources=("Hochreiter 1991; Bengio, Simard & Frasconi 1994",
             "Glorot & Bengio 2010, Understanding the difficulty of training deep "
             "feedforward neural networks"),
))

_lesson(Lesson(
    "activations", "Activations: saturation and dead units",
    "The sigmoid σ(x) = 1 / (1 + e^-x) squashes its input into (0, 1), tanh into (-1, 1). "
    "Both **saturate**: beyond about |x| = 4 for the sigmoid, or 2 for tanh, the curve is "
    "almost flat and its slope below 8% of its peak, so a saturated unit passes almost no "
    "gradient back. The sigmoid's slope σ(1 - σ) peaks at 1/4, tanh's 1 - tanh² at 1. The "
    "sigmoid's outputs are also all positive, which LeCun et al. (1998, *Efficient BackProp*) "
    "give as a reason to prefer zero-centred activations such as tanh.\n\n"
    "ReLU, max(0, x), has slope exactly 1 for every positive input, so it never saturates on "
    "that side: a main reason deep networks became trainable (Glorot, Bordes & Bengio 2011). "
    "Its cost is the other side: for negative inputs the slope is 0. A unit whose input is "
    "negative for every example, for instance after a too-large update pushed its bias far "
    "down, gets no gradient and stops learning: a **dead unit**. Leaky ReLU keeps a small "
    "slope (0.01 in PyTorch) there. The Train page shows the fraction of dead and saturated "
    "units of every layer.",
    activation_curves,
    "Solid: the activation; dashed: its slope. Where the slope is near 0 the gradient stops.",
    (r"\sigma(x)=\frac{1}{1+e^{-x}},\quad \sigma'(x)=\sigma(x)\big(1-\sigma(x)\big)"
     r"\le\tfrac14",
     r"\tanh'(x)=1-\tanh^2(x)\le 1,\qquad \mathrm{ReLU}'(x)="
     r"\begin{cases}1 & x>0\\ 0 & x<0\end{cases}"),
    preset="deep_sigmoid_cnn", experiment="ladder",
    sources=("LeCun, Bottou, Orr & Müller 1998, Efficient BackProp",
             "Glorot, Bordes & Bengio 2011, Deep sparse rectifier neural networks"),
))

_lesson(Lesson(
    "init", "Initialisation: Xavier and He",
    "Before training every weight is random, and the scale matters. For a layer z = W h with "
    "*n_in* inputs and independent zero-mean weights, Var(z) = *n_in* · Var(W) · E[h²]. If "
    "*n_in* · Var(W) is too small the signal, and the gradient with it, shrinks layer after "
    "layer; if it is too large they grow. All-zero weights are worse still: every unit of a "
    "layer computes the same thing and gets the same update, so they never become "
    "different.\n\n"
    "Glorot & Bengio (2010) chose Var(W) = 2 / (*n_in* + *n_out*), keeping both the forward "
    "signal and the backward gradient of roughly constant size for activations that are "
    "linear near 0, such as tanh (**Xavier** init). He et al. (2015) noted that ReLU zeroes "
    "half of its inputs, so E[h²] = Var(z) / 2, and chose Var(W) = 2 / *n_in* (**He** or "
    "**Kaiming** init). The playground's Xavier inits also multiply by PyTorch's recommended "
    "gain for the activation (√2 for ReLU, 5/3 for tanh); for layers of equal width that "
    "makes Xavier and He the same for ReLU. The figure pushes a batch of random inputs "
    "through fresh 256-unit layers and plots each layer's output spread.",
    init_signal,
    "Standard deviation of each layer's output at initialisation (log scale). A level line "
    "means the signal keeps its size; zero weights would give 0 everywhere (not drawable on "
    "a log scale).",
    (r"\mathrm{Var}(z_l)=n_{\text{in}}\,\mathrm{Var}(W_l)\,\mathbb{E}[h_{l-1}^2]",
     r"\text{Xavier: }\mathrm{Var}(W)=\frac{2}{n_{\text{in}}+n_{\text{out}}},\qquad"
     r"\text{He: }\mathrm{Var}(W)=\frac{2}{n_{\text{in}}}"),
    (Control("activation", "Activation", "select", "relu", ("relu", "tanh")),),
    experiment="init",
    sources=("Glorot & Bengio 2010", "He, Zhang, Ren & Sun 2015, Delving deep into "
             "rectifiers"),
))

_lesson(Lesson(
    "batchnorm", "Batch normalisation",
    "Batch normalisation (Ioffe & Szegedy 2015) standardises each channel over the current "
    "mini-batch, then lets the network rescale it with a learned γ and β. In training, the "
    "mean and variance are the batch's own; in evaluation, running averages collected during "
    "training are used instead. That is why a network with batch norm behaves differently in "
    "train and eval mode, and why very small batches hurt it.\n\n"
    "Because every layer's input is brought back to zero mean and unit variance, a badly "
    "scaled initialisation or weights that grow during training no longer make the signal "
    "shrink or explode from layer to layer, and much higher learning rates become usable. "
    "Why it helps so much is still discussed: the original explanation, reducing 'internal "
    "covariate shift', has been questioned, and Santurkar et al. (2018) argue that it makes "
    "the loss surface smoother. The figure uses PyTorch's default initialisation, whose "
    "weights are too small for ReLU (Var(W) = 1 / (3 *n_in*)), with and without batch norm. "
    "One caveat: batch norm alone does not make a very deep plain stack easy to train (see "
    "the residual lesson).",
    batchnorm_signal,
    "Standard deviation of each ReLU layer's output at initialisation (log scale).",
    (r"\hat x=\frac{x-\mu_B}{\sqrt{\sigma_B^2+\epsilon}},\qquad y=\gamma\,\hat x+\beta",),
    preset="deep_relu_bn_cnn", experiment="ladder",
    sources=("Ioffe & Szegedy 2015", "Santurkar, Tsipras, Ilyas & Madry 2018, How does batch "
             "normalization help optimization?"),
))

_lesson(Lesson(
    "residual", "Residual connections",
    "He et al. (2016) found that adding layers to a plain network, even one with batch norm, "
    "made its *training* error worse: their 56-layer plain network trained worse than the "
    "20-layer one on CIFAR-10. The extra layers could have learned the identity, so this is "
    "an optimisation difficulty, not overfitting: the **degradation problem**. They argued "
    "it is unlikely to come from vanishing gradients, since with batch norm their gradients "
    "had healthy norms.\n\n"
    "A residual block computes y = x + F(x): its layers learn only a correction to the "
    "identity. Backpropagation through it gives ∂L/∂x = ∂L/∂y · (I + ∂F/∂x): the identity "
    "term hands the gradient to earlier blocks whatever F does, and a block that is not "
    "needed can simply learn F ≈ 0. The figure measures the per-layer gradient at "
    "initialisation of He et al.'s CIFAR networks with and without shortcuts. Without them "
    "the gradient grows towards the input layers, by orders of magnitude at 56 layers: deep "
    "batch-norm stacks without shortcuts can have exploding gradients at initialisation "
    "(Yang et al. 2019), and Balduzzi et al. (2017) show that their gradients also become "
    "noise-like ('shattered'). With shortcuts it varies far less.",
    residual_profiles,
    "Gradient norm of each layer's weights at initialisation, first layer on the left (log "
    "scale), for one batch of random 16x16 images.",
    (r"y = x + F(x)\quad\Rightarrow\quad \frac{\partial L}{\partial x}="
     r"\frac{\partial L}{\partial y}\Big(I+\frac{\partial F}{\partial x}\Big)",),
    (Control("depth", "Layers", "select", 56, (20, 32, 56)),),
    preset="resnet56_cifar", experiment="depth",
    sources=("He, Zhang, Ren & Sun 2016, Deep residual learning for image recognition",
             "Balduzzi et al. 2017, The shattered gradients problem",
             "Yang et al. 2019, A mean field theory of batch normalization"),
))

_lesson(Lesson(
    "clipping", "Gradient clipping",
    "When gradients explode, one update of size lr · g can throw the weights so far that the "
    "loss becomes inf or NaN: the run 'diverges'. **Clipping by norm** rescales the whole "
    "gradient whenever its L2 norm exceeds a threshold c. The direction is kept and only the "
    "length of the step is capped, so a rare huge gradient cannot wreck the weights "
    "(Pascanu, Mikolov & Bengio 2013, for recurrent networks; it is now routine for "
    "transformers too). **Clipping by value** clamps every element to [-c, c] instead, which "
    "also changes the direction.\n\n"
    "Clipping treats a symptom: if the learning rate is far too high, clipped steps of "
    "length lr · c can still be too long and leave a network that learns nothing (the "
    "experiment shows one). The figure trains the same small ReLU network twice at a high "
    "learning rate, without and with clipping, and plots the gradient norm before clipping "
    "at every step.",
    clipping_demo,
    "Gradient norm before clipping at each step (log scale) and the training loss. The "
    "unclipped run stops when its gradients become inf/NaN.",
    (r"g \leftarrow g\cdot\min\!\Big(1,\ \frac{c}{\|g\|_2}\Big)",),
    experiment="lr_clip",
    sources=("Pascanu, Mikolov & Bengio 2013, On the difficulty of training recurrent neural "
             "networks", "torch.nn.utils.clip_grad_norm_"),
))

_lesson(Lesson(
    "schedules", "Learning-rate decay and warm-up",
    "A learning rate large enough to make fast progress early is usually too large to settle "
    "into a minimum later: the noise of mini-batch gradients keeps the weights bouncing "
    "around. Decaying the rate lets training move quickly first and fine-tune later. The "
    "common schedules multiply the base rate by f(t) after t of T updates: **step decay** "
    "(x γ every k updates; VGG and ResNet divided by 10 when the error stopped improving), "
    "**exponential decay** (γ^t) and **cosine** (Loshchilov & Hutter 2017).\n\n"
    "**Warm-up** starts from a small rate and raises it linearly over the first W updates. "
    "It protects the first steps, when the weights are random, gradients are large and "
    "Adam's running averages rest on few samples. Goyal et al. (2017) used it to train "
    "ResNet-50 with mini-batches of 8,192 images at a proportionally larger learning rate. "
    "The figure draws every schedule offered on the Train page over 300 updates.",
    schedule_curves,
    "Learning rate at each update for a base rate of 0.1, with each schedule's default "
    "parameters.",
    (r"\text{cosine: } f(t)=\tfrac12\Big(1+\cos\frac{\pi t}{T}\Big),\qquad"
     r"\text{warm-up: } f(t)=\frac{t+1}{W}\ \ (t<W)",),
    experiment="ladder",
    sources=("Loshchilov & Hutter 2017, SGDR", "Goyal et al. 2017, Accurate, large minibatch "
             "SGD"),
))

_lesson(Lesson(
    "optimizers", "Optimisers",
    "Plain SGD steps against the gradient. In a long, narrow valley the gradient points "
    "mostly across the valley, so SGD zig-zags and moves slowly along it. **Momentum** keeps "
    "a running sum of past gradients: the zig-zags cancel out and the steady direction adds "
    "up (Polyak 1964). **Nesterov** momentum in effect takes the gradient after the momentum "
    "step, correcting sooner (Sutskever et al. 2013).\n\n"
    "Adaptive methods give every weight its own step size. **Adagrad** divides by the root "
    "of the sum of all past squared gradients, so its steps only shrink (Duchi et al. 2011); "
    "**RMSprop** uses a running average of squared gradients instead (Hinton 2012); **Adam** "
    "combines momentum with RMSprop's scaling and corrects both averages' bias at the start "
    "(Kingma & Ba 2015); **AdamW** applies weight decay to the weights directly instead of "
    "through the gradient (Loshchilov & Hutter 2019). The figure runs each on the valley "
    "f(x, y) = (x² + 10 y²) / 2 from the same start, with learning rates picked for this "
    "toy problem.",
    optimizer_paths,
    "Paths over the contour lines of the valley (minimum at the centre). Hover for the "
    "learning rate used.",
    (r"\text{SGD: } w\leftarrow w-\eta g,\qquad"
     r"\text{momentum: } v\leftarrow\mu v+g,\ \ w\leftarrow w-\eta v",
     r"\text{Adam: } m\leftarrow\beta_1 m+(1-\beta_1)g,\ \ v\leftarrow\beta_2 v+(1-\beta_2)g^2,",
     r"\hat m=\frac{m}{1-\beta_1^t},\ \ \hat v=\frac{v}{1-\beta_2^t},\ \ "
     r"w\leftarrow w-\eta\,\frac{\hat m}{\sqrt{\hat v}+\epsilon}"),
    experiment="optimizers",
    sources=("Kingma & Ba 2015, Adam", "Loshchilov & Hutter 2019, Decoupled weight decay",
             "torch.optim documentation"),
))

_lesson(Lesson(
    "batch", "Batch size",
    "A mini-batch gradient averages B examples: it estimates the gradient over the whole "
    "training set, and its noise shrinks like 1/√B, since the variance of a mean of B "
    "independent samples is σ²/B (a little less when sampling without replacement). Larger "
    "batches give smoother steps and use parallel hardware better, but each step costs B "
    "examples, so for the same number of epochs they take fewer steps. Goyal et al. (2017) "
    "kept ResNet-50's ImageNet accuracy up to batches of 8,192 by multiplying the learning "
    "rate by k when the batch grows by k (with warm-up).\n\n"
    "Some noise helps: Keskar et al. (2017) found that very large batches tend to end in "
    "sharper minima that generalise worse. Memory also grows with B, because the activations "
    "kept for the backward pass are proportional to it (see the costs lesson). The figure "
    "measures, for a small network at initialisation, how far mini-batch gradients are from "
    "the full-batch gradient.",
    batch_noise,
    "Mean relative error of the mini-batch gradient against the batch size (log-log), with a "
    "1/√B reference line.",
    (r"\mathrm{Var}\big[\hat g_B\big]=\frac{\sigma^2}{B}\cdot\frac{N-B}{N-1}"
     r"\quad\Rightarrow\quad \text{noise}\propto\frac{1}{\sqrt B}\ \ (B\ll N)",),
    experiment="batch_lr",
    sources=("Goyal et al. 2017", "Keskar et al. 2017, On large-batch training for deep "
             "learning"),
))

_lesson(Lesson(
    "shapes", "Output size, stride, padding, pooling and receptive field",
    "A convolution or pooling window of size k, moved with stride s over an input of size i "
    "padded by p on each side (with dilation d), produces o = ⌊(i + 2p - d(k - 1) - 1) / s⌋ "
    "+ 1 positions: PyTorch's formula for Conv2d and MaxPool2d. With k = 3, s = 1 and p = 1 "
    "the size is kept ('same' padding); a stride of 2 or a 2x2 pool halves it. Networks "
    "shrink the map step by step while adding channels, trading spatial detail for more "
    "kinds of features.\n\n"
    "The **receptive field** is the part of the input that one output unit can see. Through "
    "a layer with kernel k it grows by (k - 1) times the **jump** j, the distance in input "
    "pixels between neighbouring units, and strides multiply the jump (Araujo, Norris & Sim, "
    "Distill 2019). Two stacked 3x3 convolutions see 5x5 and three see 7x7, with fewer "
    "weights than one 5x5 or 7x7 layer (18 C² against 25 C², 27 C² against 49 C²): VGG's "
    "argument (Simonyan & Zisserman 2015). After each stride or pool the receptive field "
    "grows faster.",
    receptive_field_growth,
    "Receptive field (px) after each convolution and pool of the chosen preset, from the "
    "analysis.",
    (r"o=\Big\lfloor\frac{i+2p-d(k-1)-1}{s}\Big\rfloor+1",
     r"r_{\text{out}}=r_{\text{in}}+(k-1)\,d\,j_{\text{in}},\qquad "
     r"j_{\text{out}}=j_{\text{in}}\,s"),
    (Control("preset", "Network", "select", "vgg16", ("vgg16", "resnet18", "lenet5",
                                                       "resnet20_cifar", "small_cnn")),),
    preset="vgg16",
    sources=("PyTorch Conv2d documentation", "Araujo, Norris & Sim 2019, Computing receptive "
             "fields of convolutional neural networks (Distill)",
             "Simonyan & Zisserman 2015"),
))

_lesson(Lesson(
    "costs", "Parameters vs FLOPs vs memory",
    "Three different costs. **Parameters** are the weights: they set the size of the model "
    "file and, in training, the memory for weights, gradients and optimiser state (Adam keeps "
    "two more values per weight). **MACs** count the multiply-accumulates of one forward pass "
    "(FLOPs are usually 2 x MACs); they drive the time per image. **Activation memory** holds "
    "every layer's output for the backward pass; it grows with the batch size and the "
    "feature-map sizes, and it often dominates training memory for CNNs.\n\n"
    "The three do not follow each other. A convolution shares its weights over all positions, "
    "so an early layer on a large map costs many MACs with few parameters, while a fully "
    "connected layer uses each weight once per image. VGG-16 has 138,357,544 parameters "
    "(VGG-19 has 143,667,240; the 138 M often quoted for VGG-19 is VGG-16's) and most of them "
    "sit in its first classifier layer (25,088 x 4,096 weights). ResNet-50 has 25,557,032 "
    "parameters and needs about a quarter of VGG-16's MACs. EfficientNet (Tan & Le 2019, "
    "Google Brain) scales depth, width and input resolution together to get more accuracy "
    "per MAC. The figure compares them from the analysis.",
    cost_comparison,
    "Parameters, MACs (fvcore: one multiply-add = one FLOP) and training memory estimate "
    "(Adam, float32) at 3x224x224.",
    (r"\text{memory} \approx \underbrace{4P}_{\text{weights}}+\underbrace{4P}_{\text{grads}}+"
     r"\underbrace{8P}_{\text{Adam}}+\underbrace{4B\sum_l |a_l|}_{\text{activations}}\ "
     r"\text{bytes}",),
    (Control("batch_size", "Batch size", "select", 32, (1, 8, 32, 128)),),
    preset="vgg16",
    sources=("fvcore FlopCountAnalysis conventions", "Simonyan & Zisserman 2015",
             "He et al. 2016", "Tan & Le 2019, EfficientNet"),
))
