"""What can be analysed: a spec, a preset, a torchvision model or a spec file; cached analyses.

Analyses are cached by the spec's canonical JSON (or the zoo model's name, input and classes),
so the Build page redraws instantly when a widget changes back and forth. Models are built on
the ``meta`` device: no weights are allocated, whatever the model's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from playground.analysis import Analysis, analyse_module
from playground.build import PlanEntry, build_model, plan_network
from playground.errors import ConfigError, PlaygroundError
from playground.presets import PRESETS, get_preset
from playground.settings import get_settings
from playground.spec import InputSpec, NetworkSpec, spec_from_json, spec_from_text
from playground.zoo import build_zoo_model, is_zoo_model, native_input, zoo_input_problem


@dataclass(frozen=True)
class Target:
    """One analysable thing. ``spec`` is set for playground designs, ``zoo`` for torchvision."""

    label: str
    input_shape: tuple[int, ...]
    num_classes: int
    spec: NetworkSpec | None = None
    zoo: str | None = None


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


def _last_feature_row(analysis: Analysis):
    """The last layer producing a C x H x W map before the head pools or flattens it."""
    for row in reversed(analysis.rows):
        if (len(row.out_shape) == 3 and not row.name.startswith("head.")
                and not row.type.startswith("Adaptive")):
            return row
    return None


def final_feature_map(analysis: Analysis) -> tuple[int, ...]:
    """The final feature map (C x H x W) the head works on; the output shape for an MLP."""
    row = _last_feature_row(analysis)
    return row.out_shape if row is not None else analysis.final_shape


def final_receptive_field(analysis: Analysis) -> tuple[int, ...] | None:
    """Receptive field (h, w) of one unit of the final feature map (LeNet-5's C5: 32)."""
    row = _last_feature_row(analysis)
    return row.rf if row is not None else None


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


def fit_to_dataset(spec: NetworkSpec, dataset: str) -> tuple[NetworkSpec, list[str]]:
    """The design adapted to a data set: its classes, and its input where it must change.

    Image sets are resized to the design's input when they can be (1 or 3 channels, sides 8 to
    128 pixels); otherwise the input becomes the set's default. Point sets need a 2x1x1 input.
    Returns the spec and plain-language notes on what changed.
    """
    from playground.data import get_dataset_info

    info = get_dataset_info(dataset)
    notes: list[str] = []
    update: dict[str, object] = {}
    if spec.num_classes != info.num_classes:
        update["num_classes"] = info.num_classes
        notes.append(f"classes set to {info.num_classes} for {info.title}")
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


def resolve_target(name: str, input_shape: tuple[int, ...] | None = None,
                   num_classes: int | None = None) -> Target:
    """A preset name, a torchvision model name, or a path to a JSON/YAML spec file."""
    if name in PRESETS:
        spec = get_preset(name, num_classes=num_classes,
                          input=InputSpec(channels=input_shape[0], height=input_shape[1],
                                          width=input_shape[2]) if input_shape else None)
        return Target(PRESETS.get(name).title, spec.input.shape, spec.num_classes, spec=spec)
    if is_zoo_model(name):
        shape = input_shape or native_input(name)
        return Target(name, shape, num_classes or 1000, zoo=name)
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
        return Target(spec.name or path.stem, spec.input.shape, spec.num_classes, spec=spec)
    raise ConfigError(
        f"{name!r} is not a preset, a torchvision model or a spec file; "
        "run 'python -m playground presets' to list the presets"
    )
