"""What can be analysed: a spec, a preset, a torchvision model or a spec file; cached analyses.

Analyses are cached by the spec's canonical JSON (or the zoo model's name, input and classes),
so the Build page redraws instantly when a widget changes back and forth. Models are built on
the ``meta`` device: no weights are allocated, whatever the model's size.

Names: thirteen names (vgg11 ... vgg19_bn, resnet18 ... resnet152) are both a preset and a
torchvision model. A bare name means the preset; ``tv:NAME`` (or ``torchvision:NAME``) picks
torchvision's model and ``preset:NAME`` the preset explicitly. ``Target.source`` says which one
was taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from playground.analysis import Analysis, analyse_module
from playground.build import PlanEntry, build_model, plan_network
from playground.errors import ConfigError, PlaygroundError, UnknownNameError
from playground.presets import PRESETS, get_preset
from playground.settings import get_settings
from playground.spec import InputSpec, NetworkSpec, spec_from_json, spec_from_text
from playground.zoo import build_zoo_model, is_zoo_model, list_zoo, zoo_input_problem


@dataclass(frozen=True)
class Target:
    """One analysable thing. ``spec`` is set for playground designs, ``zoo`` for torchvision."""

    label: str
    input_shape: tuple[int, ...]
    num_classes: int
    spec: NetworkSpec | None = None
    zoo: str | None = None
    preset: str | None = None  # the preset's name when the target is a preset
    source: str = ""  # what was taken, e.g. "vgg16 (playground preset; use tv:vgg16 for ...)"


@lru_cache(maxsize=128)
def _analyse_spec_json(canonical: str) -> Analysis:
    spec = spec_from_json(canonical)
    model = build_model(spec, device="meta")
    return analyse_module(model, spec.input.shape)


def analyse_spec(spec: NetworkSpec) -> Analysis:
    """Per-layer analysis of a design; raises ``SpecError`` naming every problem."""
    return _analyse_spec_json(spec.canonical_json())


@lru_cache(maxsize=32)
def analyse_zoo(name: str, input_shape: tuple[int, ...], num_classes: int = 1000) -> Analysis:
    problem = zoo_input_problem(name, input_shape)
    if problem:
        raise PlaygroundError(problem)
    model = build_zoo_model(name, num_classes, device="meta")
    return analyse_module(model, input_shape)


def _final_map(analysis: Analysis) -> tuple[tuple[int, ...], tuple[int, ...] | None] | None:
    """(shape, receptive field) of the final C x H x W feature map the head works on.

    With a global (adaptive) pooling head it is that pooling's input, whatever made it (a
    concatenation in Inception's own forward is no row of its own); otherwise the last layer
    producing a C x H x W map before the head flattens it (LeNet-5's C5).
    """
    for row in reversed(analysis.rows):
        if row.type.startswith("Adaptive") and len(row.in_shape) == 3:
            return row.in_shape, row.in_rf
    for row in reversed(analysis.rows):
        if len(row.out_shape) == 3 and not row.name.startswith("head."):
            return row.out_shape, row.rf
    return None


def final_feature_map(analysis: Analysis) -> tuple[int, ...]:
    """The final feature map (C x H x W) the head works on; the output shape for an MLP."""
    found = _final_map(analysis)
    return found[0] if found is not None else analysis.final_shape


def final_receptive_field(analysis: Analysis) -> tuple[int, ...] | None:
    """Receptive field (h, w) of one unit of the final feature map (LeNet-5's C5: 32)."""
    found = _final_map(analysis)
    return found[1] if found is not None else None


def analyse_target(target: Target) -> Analysis:
    if target.spec is not None:
        return analyse_spec(target.spec)
    assert target.zoo is not None
    return analyse_zoo(target.zoo, tuple(target.input_shape), target.num_classes)


@lru_cache(maxsize=128)
def _labels_json(canonical: str) -> dict[str, PlanEntry]:
    return plan_network(spec_from_json(canonical)).labels()


def layer_labels(spec: NetworkSpec) -> dict[str, PlanEntry]:
    """Module name -> plan entry (plain-language place and stage index) for a design."""
    return _labels_json(spec.canonical_json())


def fit_to_dataset(spec: NetworkSpec, dataset: str,
                   input_shape: tuple[int, int, int] | None = None,
                   ) -> tuple[NetworkSpec, list[str]]:
    """The design adapted to a data set: its classes, and its input where it must change.

    Image sets are resized to the design's input when they can be (1 or 3 channels, sides 8 to
    128 pixels); otherwise the input becomes the set's default. Point sets need a 2x1x1 input.
    ``input_shape`` (an assignment's input, which a submitted run must take) overrides both.
    Returns the spec and plain-language notes on what changed.
    """
    from playground.data import get_dataset_info

    info = get_dataset_info(dataset)
    notes: list[str] = []
    update: dict[str, object] = {}
    if spec.num_classes != info.num_classes:
        update["num_classes"] = info.num_classes
        notes.append(f"classes set to {info.num_classes} for {info.title}")
    if input_shape is not None:
        ic, ih, iw = (int(d) for d in input_shape)
        target = InputSpec(channels=ic, height=ih, width=iw)
        if target != spec.input:
            update["input"] = target
            notes.append(f"input set to {ic}x{ih}x{iw} for the assignment")
        return (spec.model_copy(update=update) if update else spec), notes
    c, h, w = spec.input.shape
    if info.kind == "points":
        target = InputSpec(channels=2, height=1, width=1)
    elif c in info.channels and 8 <= h <= 128 and 8 <= w <= 128:
        target = spec.input
    else:
        dc, dh, dw = info.input_shape
        target = InputSpec(channels=dc, height=dh, width=dw)
    if target != spec.input:
        update["input"] = target
        notes.append(f"input set to {target.channels}x{target.height}x{target.width} for "
                     f"{info.title}")
    return (spec.model_copy(update=update) if update else spec), notes


def parse_shape(text: str) -> tuple[int, ...]:
    """'3x224x224' -> (3, 224, 224); a clear error otherwise."""
    try:
        shape = tuple(int(p) for p in text.lower().replace(" ", "").split("x"))
    except ValueError:
        raise ConfigError(f"input shape {text!r} must look like 3x224x224") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"input shape {text!r} must be three positive numbers, like 3x224x224")
    return shape


ZOO_PREFIXES = ("tv:", "torchvision:")
PRESET_PREFIX = "preset:"


def _zoo_target(name: str, input_shape: tuple[int, ...] | None,
                num_classes: int | None) -> Target:
    model = next((m for m in list_zoo() if m.name == name), None)
    if model is None:
        raise UnknownNameError(
            f"{name!r} is not a torchvision classification model; e.g. "
            f"{', '.join(m.name for m in list_zoo()[:6])} ... ({len(list_zoo())} in all; "
            "the Build page lists them)")
    other = f"use {PRESET_PREFIX}{name} for the playground preset" if name in PRESETS else ""
    source = f"{name} (torchvision model" + "".join(f"; {t}" for t in (model.note, other) if t)
    return Target(name, input_shape or model.input_shape, num_classes or 1000, zoo=name,
                  source=source + ")")


def _preset_target(name: str, input_shape: tuple[int, ...] | None,
                   num_classes: int | None) -> Target:
    spec = get_preset(name, num_classes=num_classes,
                      input=InputSpec(channels=input_shape[0], height=input_shape[1],
                                      width=input_shape[2]) if input_shape else None)
    other = f"; use {ZOO_PREFIXES[0]}{name} for torchvision's model" if is_zoo_model(name) else ""
    return Target(PRESETS.get(name).title, spec.input.shape, spec.num_classes, spec=spec,
                  preset=name, source=f"{name} (playground preset{other})")


def resolve_target(name: str, input_shape: tuple[int, ...] | None = None,
                   num_classes: int | None = None) -> Target:
    """A preset name, a torchvision model name, or a path to a JSON/YAML spec file.

    A bare name that is both a preset and a torchvision model means the preset; prefix it with
    ``tv:`` (or ``torchvision:``) for torchvision's model, or ``preset:`` to be explicit.
    """
    for prefix in ZOO_PREFIXES:
        if name.startswith(prefix):
            return _zoo_target(name[len(prefix):], input_shape, num_classes)
    if name.startswith(PRESET_PREFIX):
        return _preset_target(name[len(PRESET_PREFIX):], input_shape, num_classes)
    if name in PRESETS:
        return _preset_target(name, input_shape, num_classes)
    if is_zoo_model(name):
        return _zoo_target(name, input_shape, num_classes)
    path = Path(name)
    if path.suffix.lower() in {".json", ".yaml", ".yml"} or path.exists():
        if not path.is_file():
            raise ConfigError(f"no such file: {name}")
        limit = get_settings().max_upload_bytes
        if path.stat().st_size > limit:
            raise ConfigError(f"{name} is larger than {limit:,} bytes; is it really a spec?")
        spec = spec_from_text(path.read_bytes(), path.name)
        update: dict[str, object] = {}
        if num_classes is not None:
            update["num_classes"] = num_classes
        if input_shape is not None:
            update["input"] = InputSpec(channels=input_shape[0], height=input_shape[1],
                                        width=input_shape[2])
        spec = spec.model_copy(update=update) if update else spec
        return Target(spec.name or path.stem, spec.input.shape, spec.num_classes, spec=spec,
                      source=f"{name} (spec file)")
    raise ConfigError(
        f"{name!r} is not a preset, a torchvision model or a spec file; "
        "run 'python -m playground presets' to list the presets"
    )
