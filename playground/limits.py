"""Plain bounds on everything a spec, a file or a share link can ask for.

One table, read by the schema (``spec.py`` puts them on the pydantic fields), the editor widgets
and the README's "Limits" table. They are chosen so that any design inside them validates and
analyses in well under a second on a 2-core CPU (``benchmarks/limits.py`` measures the worst
cases) and no shape, parameter count or receptive field can overflow a 64-bit integer.

Parsed JSON/YAML is checked by :func:`check_tree` *before* pydantic sees it: at most
``MAX_TREE_DEPTH`` levels of nesting and ``MAX_TREE_NODES`` values in all, counted as the tree a
reader would expand (so YAML aliases that fan out, the "billion laughs", are refused after
``MAX_TREE_NODES`` steps, in bounded time and memory). :func:`load_yaml` adds an alias budget and
:func:`load_json` turns every parser failure (deep nesting, 4,300-digit integers, bad UTF-8)
into one :class:`~playground.errors.ConfigError` line.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from playground.errors import ConfigError

# field -> (lowest, highest) allowed value; keys are the spec's field names, made unique.
BOUNDS: dict[str, tuple[int, int]] = {
    "channels": (1, 64),            # input channels
    "height": (1, 1024),            # input height (px)
    "input_width": (1, 1024),       # input width (px)
    "num_classes": (1, 100_000),
    "stages": (1, 32),              # stages in a network
    "depth": (1, 128),              # layers or blocks in one stage
    "width": (1, 8192),             # channels of a conv stage / features of a linear stage
    "kernel": (1, 31),              # conv and pool kernels (px)
    "stride": (1, 64),              # conv and pool strides
    "padding": (0, 31),             # conv padding (px); "same" = kernel // 2
    "pool_padding": (0, 15),        # pool padding; PyTorch also needs it <= kernel / 2
    "expansion": (1, 16),           # bottleneck expansion
    "norm_groups": (1, 8192),
    "pool_size": (1, 64),           # the head's adaptive pool output side
    "hidden_layers": (0, 16),       # hidden linear layers in the head
    "hidden": (1, 8192),            # features of one hidden layer
}
MAX_TOTAL_DEPTH = 128               # layers or blocks over all stages (ResNet-152: 50)
MAX_LAYER_PARAMS = 1_000_000_000    # weights of one conv or linear layer
MAX_TOTAL_STRIDE = 4096             # product of every stride: the input is at most 1,024 px
MAX_TEXT = {"name": 100, "description": 2_000}
MAX_TREE_DEPTH = 12                 # a spec nests 5 levels (spec > stages > [i] > pool > kernel)
MAX_TREE_NODES = 20_000             # values in a parsed file, aliases expanded
MAX_YAML_ALIASES = 32

# What the README's "Limits" table shows: (what, bound) in plain words.
LIMITS_TABLE: list[tuple[str, str]] = [
    ("input", "1-64 channels, 1-1,024 px high and wide"),
    ("classes", "1-100,000"),
    ("stages", "1-32 per network"),
    ("depth", "1-128 layers or blocks per stage, 128 over all stages"),
    ("width", "1-8,192 channels or features (stem, stages, hidden layers)"),
    ("kernel", "1-31 px (conv and pool)"),
    ("stride", "1-64 per layer; 4,096 multiplied over the whole network"),
    ("padding", "0-31 px for convs, 0-15 px (and at most half the kernel) for pools"),
    ("bottleneck expansion", "1-16"),
    ("head", "adaptive pool to at most 64x64; at most 16 hidden layers"),
    ("one layer", "at most 1,000,000,000 parameters"),
    ("dropout", "0 to below 1"),
    ("name / description", "100 / 2,000 characters of printable text"),
    ("files and share links", "12 levels of nesting, 20,000 values, 32 YAML aliases, "
                              "256 KiB uploads, 8,000-character links"),
]


def check_text(value: str, limit: int) -> str:
    """Printable text of at most ``limit`` characters (newlines and tabs allowed).

    Lone UTF-16 surrogates (``"\\ud800"`` from a JSON escape) cannot be written as UTF-8 and
    control characters break terminals and tables: both are refused, as is anything longer.
    """
    from pydantic_core import PydanticCustomError

    if len(value) > limit:
        raise PydanticCustomError("text_too_long", "is {n} characters long; use at most {limit}",
                                  {"n": f"{len(value):,}", "limit": f"{limit:,}"})
    for ch in value:
        if "\ud800" <= ch <= "\udfff":
            raise PydanticCustomError("bad_text", "contains a broken character (a lone UTF-16 "
                                      "surrogate such as \\ud800); use plain text")
        if not ch.isprintable() and ch not in "\n\t":
            raise PydanticCustomError("bad_text", "contains a control character {code}; use "
                                      "plain text", {"code": f"U+{ord(ch):04X}"})
    return value


def check_tree(data: Any, what: str = "this file") -> None:
    """Refuse data nested deeper than ``MAX_TREE_DEPTH`` or with more than ``MAX_TREE_NODES``
    values, counting shared (aliased) parts once per use. Iterative: stops at the first excess,
    so a self-referencing or exponentially aliased structure is refused in bounded time."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_TREE_NODES:
            raise ConfigError(f"{what} holds more than {MAX_TREE_NODES:,} values; a design "
                              "needs far fewer")
        if isinstance(value, dict):
            children: Any = [*value.keys(), *value.values()]
        elif isinstance(value, list | tuple):
            children = value
        else:
            continue
        if depth >= MAX_TREE_DEPTH and children:
            raise ConfigError(f"{what} is nested more than {MAX_TREE_DEPTH} levels deep; a "
                              "design needs 5")
        stack.extend((child, depth + 1) for child in children)


def _strip_bom(text: str | bytes, what: str) -> str:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{what} is not UTF-8 text") from None
    return text.removeprefix("\ufeff")


def load_json(text: str | bytes, what: str = "this") -> Any:
    """Parse JSON (a UTF-8 byte-order mark is allowed) and check its size; every failure is one
    :class:`ConfigError` naming ``what`` was read."""
    text = _strip_bom(text, what)
    try:
        data = json.loads(text)
    except RecursionError:
        raise ConfigError(f"{what} is nested too deeply to be a design") from None
    except ValueError as exc:  # JSONDecodeError, and integers over Python's 4,300 digits
        detail = str(exc).splitlines()[0][:120]
        raise ConfigError(f"{what} is not valid JSON ({detail})") from None
    check_tree(data, what)
    return data


class _BudgetLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses more than ``MAX_YAML_ALIASES`` alias uses."""

    aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise ConfigError(f"this YAML uses more than {MAX_YAML_ALIASES} aliases (*name); "
                                  "a design needs none")
        return super().compose_node(parent, index)


def load_yaml(text: str | bytes, what: str = "this") -> Any:
    """``yaml.safe_load`` with an alias budget and the same size checks as :func:`load_json`."""
    text = _strip_bom(text, what)
    loader = None
    try:
        loader = _BudgetLoader(text)  # the reader already refuses some characters
        data = loader.get_single_data()
    except RecursionError:
        raise ConfigError(f"{what} is nested too deeply to be a design") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "parse error"
        raise ConfigError(f"{what} is not valid YAML ({first})") from None
    except ValueError as exc:  # an integer over Python's 4,300 digits
        raise ConfigError(f"{what} is not valid YAML ({str(exc).splitlines()[0][:120]})") from None
    finally:
        if loader is not None:
            loader.dispose()
    check_tree(data, what)
    return data
