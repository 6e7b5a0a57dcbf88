"""The declarative network spec: typed, frozen, round-trips to JSON and YAML.

A :class:`NetworkSpec` describes a CNN or MLP as data (torchvision ``vgg.py`` ``cfgs`` and timm
``byobnet`` block configs are the models): an input, an optional stem, a list of stages and a
head. Every string field is a *name* looked up in a registry (``playground.layers``); nothing is
ever evaluated. Stages inherit ``activation``, ``norm``, ``init`` and ``dropout`` from
``defaults`` when their own field is ``None``.

Loading goes through :func:`spec_from_dict`, :func:`spec_from_json` and :func:`spec_from_yaml`
(``yaml.safe_load`` only), which turn every type problem into the project's
:class:`~playground.errors.SpecError` with plain-language messages. Shape problems (a spatial size
reaching zero, a kernel larger than its padded input, a residual that cannot add up) are found by
:func:`playground.build.validate`, which walks the same plan the builder uses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from playground.errors import ConfigError, Problem, SpecError

BlockKind = Literal["conv", "basic", "bottleneck", "linear"]
PoolKind = Literal["none", "max", "avg"]
HeadPool = Literal["avg", "max", "adaptive_avg", "adaptive_max", "flatten"]
ShortcutKind = Literal["projection", "pad"]

SPEC_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InputSpec(_Frozen):
    """The input tensor without its batch dimension: (channels, height, width).

    Vector inputs (2-D points, tabular features) use ``height = width = 1``.
    """

    channels: int = Field(3, description="input channels (3 for RGB, 1 for grey)")
    height: int = Field(32, description="input height in pixels")
    width: int = Field(32, description="input width in pixels")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)


class PoolSpec(_Frozen):
    """A pooling layer: kind, kernel, stride (``None`` = kernel, as in PyTorch) and padding."""

    kind: PoolKind = "max"
    kernel: int = 2
    stride: int | None = None
    padding: int = 0

    @property
    def effective_stride(self) -> int:
        return self.kernel if self.stride is None else self.stride


class Defaults(_Frozen):
    """Settings every stage inherits unless it sets its own."""

    activation: str = Field("relu", description="activation name (see ACTIVATIONS)")
    norm: str = Field("batch", description="normalisation: none, batch, group, layer")
    norm_groups: int = Field(32, description="groups for group norm")
    init: str = Field("default", description="weight initialisation (see INITS)")
    init_std: float = Field(0.01, description="standard deviation for the 'normal' init")
    dropout: float = Field(0.0, description="dropout probability after each activation")
    bias: bool | None = Field(
        None, description="conv bias; None = only when no batch/group norm follows"
    )


class StemSpec(_Frozen):
    """A single convolution (+ norm + activation) and an optional pool, as ResNet's 7x7/2 stem."""

    width: int = 64
    kernel: int = 7
    stride: int = 2
    padding: int | Literal["same"] = "same"
    pool: PoolSpec | None = None


class StageSpec(_Frozen):
    """One stage: ``depth`` layers or blocks of one kind at one width.

    - ``conv``: plain conv -> norm -> activation [-> dropout] layers (VGG, LeNet). With
      ``residual=True`` each layer adds its input back (a 1x1 projection when shapes change).
    - ``basic``: ResNet basic block, two 3x3 convs (He et al. 2016, Fig. 2 left).
    - ``bottleneck``: ResNet bottleneck 1x1 -> 3x3 -> 1x1 with ``expansion`` (4), stride on the
      3x3 conv ("ResNet v1.5", as torchvision). ``width`` is the inner width; the block outputs
      ``width * expansion`` channels.
    - ``linear``: fully connected layers (MLP); a spatial input is flattened first.

    ``stride`` applies to the first layer/block only. ``residual`` defaults to ``True`` for
    basic/bottleneck blocks and ``False`` otherwise; ``False`` on a basic block gives the
    "plain" network of He et al. ``shortcut`` chooses how a residual changes shape: a 1x1 conv
    ("projection", option B) or strided identity with zero-padded channels ("pad", option A,
    used for the CIFAR ResNets).
    """

    block: BlockKind = "conv"
    depth: int = 1
    width: int = 64
    kernel: int = 3
    stride: int = 1
    padding: int | Literal["same"] = "same"
    pool: PoolSpec | None = None
    activation: str | None = None
    norm: str | None = None
    init: str | None = None
    dropout: float | None = None
    residual: bool | None = None
    shortcut: ShortcutKind = "projection"
    expansion: int = 4


class HeadSpec(_Frozen):
    """Pooling, then optional hidden linear layers, then the classifier ``head.fc``.

    ``pool``: ``avg``/``max`` pool the whole feature map to 1x1; ``adaptive_avg``/``adaptive_max``
    pool to ``pool_size`` x ``pool_size`` (VGG uses 7); ``flatten`` keeps every position. When the
    features are already flat (after a linear stage) no pooling is applied.
    """

    pool: HeadPool = "avg"
    pool_size: int = 1
    hidden: tuple[int, ...] = ()
    activation: str | None = None
    dropout: float = 0.0


class NetworkSpec(_Frozen):
    """A whole network. See the module docstring for the flow it feeds."""

    version: int = SPEC_VERSION
    name: str = "custom"
    description: str = ""
    input: InputSpec = InputSpec()
    num_classes: int = 10
    stem: StemSpec | None = None
    stages: tuple[StageSpec, ...] = (StageSpec(),)
    defaults: Defaults = Defaults()
    head: HeadSpec = HeadSpec()

    @field_validator("stages", mode="before")
    @classmethod
    def _stages_tuple(cls, v: Any) -> Any:
        return tuple(v) if isinstance(v, list) else v

    # -- derived values --------------------------------------------------------------------
    def stage_value(self, index: int, field: str) -> Any:
        """A stage's own value, or the network default when the stage leaves it ``None``."""
        value = getattr(self.stages[index], field)
        return getattr(self.defaults, field) if value is None else value

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def canonical_json(self) -> str:
        """Compact, key-sorted JSON: equal specs give equal strings (the cache key)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def spec_hash(self) -> str:
        return hashlib.sha1(self.canonical_json().encode()).hexdigest()[:16]

    # -- editing helpers (specs are frozen: each returns a new spec) ------------------------
    def with_stage(self, index: int, **changes: Any) -> NetworkSpec:
        stages = list(self.stages)
        stages[index] = stages[index].model_copy(update=changes)
        return self.model_copy(update={"stages": tuple(stages)})

    def with_stages(self, stages: list[StageSpec] | tuple[StageSpec, ...]) -> NetworkSpec:
        return self.model_copy(update={"stages": tuple(stages)})


# -- loading ---------------------------------------------------------------------------------
def _where(loc: tuple[int | str, ...]) -> tuple[str, int | None]:
    """Turn a pydantic error location into "stage 2, width" and a stage index."""
    parts: list[str] = []
    stage: int | None = None
    i = 0
    while i < len(loc):
        part = loc[i]
        if part == "stages" and i + 1 < len(loc) and isinstance(loc[i + 1], int):
            stage = int(loc[i + 1])
            parts.append(f"stage {stage + 1}")
            i += 2
            continue
        parts.append(str(part))
        i += 1
    return (", ".join(parts) or "spec"), stage


def plain_type_error(err: Mapping[str, Any]) -> str | None:
    """Pydantic's type errors in plain words ("must be a whole number; got 'wide'"), without
    the location; None for other kinds of error. Shared by specs and training settings."""
    kind = str(err.get("type", ""))
    got = err.get("input")
    if kind == "missing":
        return "is required"
    if kind.startswith("literal_error"):
        return f"must be one of {err.get('ctx', {}).get('expected', '')}; got {got!r}"
    for prefix, wanted in (("int_", "a whole number"), ("float_", "a number"),
                           ("bool_", "true or false"), ("string_", "text"),
                           ("dict_", "a mapping of names to values (a JSON object)")):
        if kind.startswith(prefix):
            return f"must be {wanted}; got {got!r}"
    return None


def _plain(err: dict[str, Any]) -> str:
    if err.get("type") == "extra_forbidden":
        return "is not a known field (check its spelling)"
    return plain_type_error(err) or str(err.get("msg", "is invalid"))


def spec_from_dict(data: Any) -> NetworkSpec:
    """Build a spec from plain data, turning every type error into one :class:`SpecError`."""
    if not isinstance(data, dict):
        raise SpecError([Problem("spec", "must be a mapping of fields (a JSON object)")])
    try:
        return NetworkSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where, stage = _where(tuple(err.get("loc", ())))
            problems.append(
                Problem(where, _plain(err), path=tuple(err.get("loc", ())), stage=stage)
            )
        raise SpecError(problems) from None


def read_json(text: str | bytes, what: str = "this") -> Any:
    """Parse JSON text; broken text raises one ConfigError naming ``what`` was read."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} is not valid JSON ({exc})") from None


def spec_from_json(text: str | bytes) -> NetworkSpec:
    return spec_from_dict(read_json(text))


def spec_from_yaml(text: str | bytes) -> NetworkSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "parse error"
        raise ConfigError(f"this is not valid YAML ({first})") from None
    return spec_from_dict(data)


def spec_from_text(text: str | bytes, filename: str = "") -> NetworkSpec:
    """Read JSON or YAML, chosen by file extension, else by content (JSON is valid YAML)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError("the file is not UTF-8 text; export a .json or .yaml spec") from None
    name = filename.lower()
    if name.endswith(".json"):
        return spec_from_json(text)
    if name.endswith((".yaml", ".yml")) or not text.lstrip().startswith("{"):
        return spec_from_yaml(text)
    return spec_from_json(text)
