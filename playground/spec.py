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
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from playground.errors import ConfigError, Problem, SpecError
from playground.layers import ACTIVATIONS, INITS, NORMS
from playground.limits import (
    BOUNDS,
    MAX_TEXT,
    MAX_TOTAL_DEPTH,
    MAX_TREE_DEPTH,
    check_text,
    check_tree,
    load_json,
    load_yaml,
)
from playground.registry import Registry

BlockKind = Literal["conv", "basic", "bottleneck", "linear"]
PoolKind = Literal["none", "max", "avg"]
HeadPool = Literal["avg", "max", "adaptive_avg", "adaptive_max", "flatten"]
ShortcutKind = Literal["projection", "pad"]

SPEC_VERSION = 1


def _int(field: str, default: Any, description: str = "") -> Any:
    """An integer field bounded by ``limits.BOUNDS[field]`` (the README's Limits table)."""
    lo, hi = BOUNDS[field]
    return Field(default, ge=lo, le=hi, description=description)


def _named(registry: Registry[Any]) -> AfterValidator:
    """A name that must be registered in ``registry`` (checked while parsing, so a file with
    several problems reports them all at once)."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in registry:
            raise PydanticCustomError(
                "unknown_name", "unknown {kind} {value}; choose one of {known}",
                {"kind": registry.kind, "value": repr(value[:40]),
                 "known": ", ".join(registry.names())})
        return value

    return AfterValidator(check)


def _text(limit: int) -> AfterValidator:
    return AfterValidator(lambda v: check_text(v, limit))


Activation = Annotated[str, _named(ACTIVATIONS)]
Norm = Annotated[str, _named(NORMS)]
Init = Annotated[str, _named(INITS)]
Probability = Annotated[float, Field(ge=0.0, lt=1.0)]
Padding = Annotated[int, Field(ge=BOUNDS["padding"][0], le=BOUNDS["padding"][1])]
Hidden = Annotated[int, Field(ge=BOUNDS["hidden"][0], le=BOUNDS["hidden"][1])]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InputSpec(_Frozen):
    """The input tensor without its batch dimension: (channels, height, width).

    Vector inputs (2-D points, tabular features) use ``height = width = 1``.
    """

    channels: int = _int("channels", 3, "input channels (3 for RGB, 1 for grey)")
    height: int = _int("height", 32, "input height in pixels")
    width: int = _int("input_width", 32, "input width in pixels")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)


class PoolSpec(_Frozen):
    """A pooling layer: kind, kernel, stride (``None`` = kernel, as in PyTorch) and padding."""

    kind: PoolKind = "max"
    kernel: int = _int("kernel", 2)
    stride: int | None = _int("stride", None)
    padding: int = _int("pool_padding", 0)

    @property
    def effective_stride(self) -> int:
        return self.kernel if self.stride is None else self.stride


class Defaults(_Frozen):
    """Settings every stage inherits unless it sets its own."""

    activation: Activation = Field("relu", description="activation name (see ACTIVATIONS)")
    norm: Norm = Field("batch", description="normalisation: none, batch, group, layer")
    norm_groups: int = _int("norm_groups", 32, "groups for group norm")
    init: Init = Field("default", description="weight initialisation (see INITS)")
    init_std: float = Field(0.01, gt=0.0, le=10.0,
                            description="standard deviation for the 'normal' init")
    dropout: Probability = Field(0.0, description="dropout probability after each activation")
    bias: bool | None = Field(
        None, description="conv bias; None = only when no batch/group norm follows"
    )


class StemSpec(_Frozen):
    """A single convolution (+ norm + activation) and an optional pool, as ResNet's 7x7/2 stem."""

    width: int = _int("width", 64)
    kernel: int = _int("kernel", 7)
    stride: int = _int("stride", 2)
    padding: Padding | Literal["same"] = "same"
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
    depth: int = _int("depth", 1)
    width: int = _int("width", 64)
    kernel: int = _int("kernel", 3)
    stride: int = _int("stride", 1)
    padding: Padding | Literal["same"] = "same"
    pool: PoolSpec | None = None
    activation: Activation | None = None
    norm: Norm | None = None
    init: Init | None = None
    dropout: Probability | None = None
    residual: bool | None = None
    shortcut: ShortcutKind = "projection"
    expansion: int = _int("expansion", 4)


class HeadSpec(_Frozen):
    """Pooling, then optional hidden linear layers, then the classifier ``head.fc``.

    ``pool``: ``avg``/``max`` pool the whole feature map to 1x1; ``adaptive_avg``/``adaptive_max``
    pool to ``pool_size`` x ``pool_size`` (VGG uses 7); ``flatten`` keeps every position. When the
    features are already flat (after a linear stage) no pooling is applied.
    """

    pool: HeadPool = "avg"
    pool_size: int = _int("pool_size", 1)
    hidden: tuple[Hidden, ...] = Field((), max_length=BOUNDS["hidden_layers"][1])
    activation: Activation | None = None
    dropout: Probability = 0.0


class NetworkSpec(_Frozen):
    """A whole network. See the module docstring for the flow it feeds."""

    version: Literal[1] = SPEC_VERSION
    name: Annotated[str, _text(MAX_TEXT["name"])] = "custom"
    description: Annotated[str, _text(MAX_TEXT["description"])] = ""
    input: InputSpec = InputSpec()
    num_classes: int = _int("num_classes", 10)
    stem: StemSpec | None = None
    stages: tuple[StageSpec, ...] = Field(
        (StageSpec(),), min_length=BOUNDS["stages"][0], max_length=BOUNDS["stages"][1])
    defaults: Defaults = Defaults()
    head: HeadSpec = HeadSpec()

    @field_validator("stages", mode="before")
    @classmethod
    def _stages_tuple(cls, v: Any) -> Any:
        return tuple(v) if isinstance(v, list) else v

    @model_validator(mode="after")
    def _total_depth(self) -> NetworkSpec:
        total = sum(s.depth for s in self.stages)
        if total > MAX_TOTAL_DEPTH:
            raise PydanticCustomError(
                "too_deep", "the stages hold {total} layers or blocks in all; use at most "
                "{limit} (ResNet-152 has 50)", {"total": f"{total:,}", "limit": MAX_TOTAL_DEPTH})
        return self

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
def _where(loc: tuple[int | str, ...]) -> tuple[str, str, int | None]:
    """Split a pydantic error location into a place ("stage 2", "head"), the field at fault
    ("width", "pool kernel"; empty for a whole part) and the stage index."""
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
        if isinstance(part, int):  # an entry of a list: "hidden 3"
            parts[-1:] = [f"{parts[-1]} {part + 1}" if parts else f"item {part + 1}"]
        else:
            parts.append(str(part))
        i += 1
    if stage is not None and len(parts) > 1 and parts[0].startswith("stage "):
        return parts[0], " ".join(parts[1:]), stage
    if len(parts) > 1:
        return parts[0], " ".join(parts[1:]), stage
    return "network", (parts[0] if parts else ""), stage


def _field_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """A pydantic location without its union-branch tags ("constrained-int",
    "literal['same']", "function-after[...]"): only field names and list indices remain."""
    return tuple(p for p in loc if isinstance(p, int) or not any(c in p for c in "-[("))


def _short(value: Any, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters, safe on huge or deeply nested values."""
    if isinstance(value, dict | list | tuple):
        return f"a {'mapping' if isinstance(value, dict) else 'list'}"
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "a huge number"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def plain_type_error(err: Mapping[str, Any]) -> str | None:
    """Pydantic's type and range errors in plain words ("must be a whole number; got 'wide'",
    "must be at most 8,192; got 9000"), without the location; None for other kinds of error.
    Shared by specs and training settings."""
    kind = str(err.get("type", ""))
    got = _short(err.get("input"))
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind.startswith("literal_error"):
        return f"must be one of {ctx.get('expected', '')}; got {got}"
    bounds = {"greater_than_equal": ("at least", "ge"), "greater_than": ("more than", "gt"),
              "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}
    if kind in bounds:
        words, key = bounds[kind]
        bound = ctx.get(key)
        shown = f"{bound:,}" if isinstance(bound, int) else str(bound)
        return f"must be {words} {shown}; got {got}"
    if kind == "too_long":
        return (f"may have at most {ctx.get('max_length', 0):,} entries; got "
                f"{ctx.get('actual_length', 0):,}")
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length', 0):,} entries"
    for prefix, wanted in (("int_", "a whole number"), ("float_", "a number"),
                           ("bool_", "true or false"), ("string_", "text"),
                           ("dict_", "a mapping of names to values (a JSON object)"),
                           ("tuple_", "a list"), ("list_", "a list")):
        if kind.startswith(prefix):
            return f"must be {wanted}; got {got}"
    return None


def _plain(err: dict[str, Any]) -> str:
    if err.get("type") == "extra_forbidden":
        return "is not a known field (check its spelling)"
    if err.get("type") in {"unknown_name", "bad_text", "text_too_long", "too_deep"}:
        return str(err.get("msg"))
    return plain_type_error(err) or str(err.get("msg", "is invalid"))[:200]


def spec_problems(data: Any) -> list[Problem]:
    """Every schema problem of plain data (types, bounds, names), each naming its place."""
    if not isinstance(data, dict):
        return [Problem("spec", "must be a mapping of fields (a JSON object)")]
    try:
        NetworkSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        seen: set[tuple[int | str, ...]] = set()
        errors = [{**e, "loc": _field_loc(e["loc"])} for e in exc.errors(include_url=False)]
        # a union (padding: int | "same") fails once per branch: the bound beats the literal
        errors.sort(key=lambda e: e["type"].startswith("literal_error"))
        inner = {tuple(e["loc"][:1]) for e in errors if len(e["loc"]) > 1}
        for err in errors:
            loc = err["loc"]
            if loc in seen or (err["type"] == "too_short" and loc in inner):
                continue  # pydantic counts only the valid entries: the real error is inside
            seen.add(loc)
            where, field, stage = _where(loc)
            text = _plain(err)
            if field and err["type"] != "unknown_name":  # that message names its kind itself
                text = f"{field} {text}"
            problems.append(Problem(where, text, path=loc,
                                    stage=stage))
        return problems
    except RecursionError:
        return [Problem("spec", f"is nested more than {MAX_TREE_DEPTH} levels deep")]
    return []


def spec_from_dict(data: Any) -> NetworkSpec:
    """Build a spec from plain data, turning every type error into one :class:`SpecError`.

    The data is size-checked first (:func:`playground.limits.check_tree`), so nothing huge or
    deeply nested reaches pydantic.
    """
    if not isinstance(data, dict):
        raise SpecError([Problem("spec", "must be a mapping of fields (a JSON object)")])
    check_tree(data, "this design")
    problems = spec_problems(data)
    if problems:
        raise SpecError(problems)
    return NetworkSpec.model_validate(data)


def read_json(text: str | bytes, what: str = "this") -> Any:
    """Parse JSON text; broken, deep or huge text raises one ConfigError naming ``what``."""
    return load_json(text, what)


def spec_from_json(text: str | bytes) -> NetworkSpec:
    return spec_from_dict(load_json(text))


def spec_from_yaml(text: str | bytes) -> NetworkSpec:
    return spec_from_dict(load_yaml(text))


def spec_from_text(text: str | bytes, filename: str = "") -> NetworkSpec:
    """Read JSON or YAML, chosen by file extension, else by content (JSON is valid YAML). A
    UTF-8 byte-order mark is allowed in both."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError("the file is not UTF-8 text; export a .json or .yaml spec") from None
    text = text.removeprefix("\ufeff")
    name = filename.lower()
    if name.endswith(".json"):
        return spec_from_json(text)
    if name.endswith((".yaml", ".yml")) or not text.lstrip().startswith("{"):
        return spec_from_yaml(text)
    return spec_from_json(text)
