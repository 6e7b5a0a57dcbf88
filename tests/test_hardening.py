"""Hostile and careless input (issue 9, items 1-9): every one gets the project's own error, in
one line, in bounded time and memory; the CLI exits 2 with one line on stderr.

A seeded hypothesis fuzz over the real schema and over share links checks that nothing but
:class:`~playground.errors.PlaygroundError` ever escapes. Hang guards (subprocess timeouts,
hypothesis deadlines) are generous bounds against hangs, not speed targets: speed is measured by
``benchmarks/limits.py``.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tracemalloc
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.build import check, validate
from playground.cli import main
from playground.errors import ConfigError, PlaygroundError, SpecError
from playground.limits import (
    BOUNDS,
    MAX_TOTAL_DEPTH,
    MAX_TREE_NODES,
    check_tree,
    load_json,
    load_yaml,
)
from playground.share import decode_spec, decode_state, encode_spec, encode_state
from playground.spec import NetworkSpec, spec_from_dict, spec_from_text
from playground.targets import analyse_spec, final_receptive_field

ROOT = Path(__file__).resolve().parents[1]
HANG_GUARD_S = 60  # a subprocess that runs longer than this is hung, whatever the load

BAD_SPECS: dict[str, dict[str, Any]] = {
    "huge_pool_size": {"head": {"pool": "adaptive_avg", "pool_size": 1_000_000_000}},
    "huge_expansion": {"stages": [{"block": "bottleneck", "expansion": 10**20}]},
    "padding_2_63": {"stages": [{"padding": 9223372036854775808}]},
    "pool_stride_2_62": {"stages": [{"pool": {"kind": "max", "kernel": 2, "stride": 2**62}}]},
    "long_hidden": {"head": {"hidden": [4] * 60_000}},
    "hidden_17": {"head": {"hidden": [4] * 17}},
    "deep_and_wide": {"stages": [{"depth": 128, "width": 8192}] * 32},
    "lone_surrogate": {"name": "\ud800"},
    "markdown_activation": {"defaults": {"activation": "![x](http://127.0.0.1:8798/leak.png)"}},
}


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert text and "\n" not in text, text
    return text


class _Out:
    def __init__(self, returncode: int, stderr: str):
        self.returncode, self.stderr = returncode, stderr


def _cli(tmp_path: Path, text: str, name: str = "bad.json", subprocess_: bool = False) -> Any:
    """``python -m playground analyse FILE``: in this process (fast), or in a real subprocess
    where what reaches the terminal matters (C++ warnings, tracebacks)."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    if subprocess_:
        return subprocess.run([sys.executable, "-m", "playground", "analyse", str(path)],
                              capture_output=True, text=True, cwd=ROOT, timeout=HANG_GUARD_S)
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["analyse", str(path)])
    return _Out(code, err.getvalue())


def _assert_cli_one_line(out: Any, *needles: str) -> None:
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# -- items 1, 2, 6, 7, 8: bounds on every number and list --------------------------------------
@pytest.mark.parametrize(("case", "needle"), [
    ("huge_pool_size", "head: pool_size must be at most 64; got 1000000000"),
    ("huge_expansion", "stage 1: expansion must be at most 16; got 100000000000000000000"),
    ("padding_2_63", "stage 1: padding must be at most 31"),
    ("pool_stride_2_62", "stage 1: pool stride must be at most 64"),
    ("long_hidden", "this design holds more than 20,000 values"),
    ("hidden_17", "head: hidden may have at most 16 entries; got 17"),
    ("deep_and_wide", "4,096 layers or blocks in all; use at most 128"),
])
def test_out_of_bounds_values_are_refused_by_the_schema(case: str, needle: str) -> None:
    with pytest.raises(PlaygroundError) as err:
        spec_from_dict(BAD_SPECS[case])
    assert needle in _one_line(err.value)


@pytest.mark.parametrize("case", ["huge_pool_size", "huge_expansion", "padding_2_63",
                                  "pool_stride_2_62", "long_hidden", "lone_surrogate",
                                  "markdown_activation"])
def test_bad_share_links_raise_config_error(case: str) -> None:
    with pytest.raises(ConfigError) as err:
        decode_spec(encode_state(BAD_SPECS[case]))
    assert _one_line(err.value).startswith(("this share link holds an invalid design",
                                            "this share link holds more than 20,000 values"))


@pytest.mark.parametrize("case", ["huge_pool_size", "padding_2_63", "huge_expansion"])
def test_cli_out_of_bounds_is_one_line_exit_2(case: str, tmp_path: Path) -> None:
    _assert_cli_one_line(_cli(tmp_path, json.dumps(BAD_SPECS[case])), "must be at most")


def test_cli_subprocess_prints_no_cpp_frames(tmp_path: Path) -> None:
    """Item 7: the padding of 2**63 printed 13 lines of C++ frames from a real process."""
    out = _cli(tmp_path, json.dumps(BAD_SPECS["padding_2_63"]), subprocess_=True)
    _assert_cli_one_line(out, "padding must be at most 31")


def test_edited_specs_are_checked_against_the_same_bounds() -> None:
    """The editor makes specs with model_copy (no pydantic validation): validate() must still
    find out-of-bounds values, next to the right stage."""
    spec = NetworkSpec().with_stage(0, padding=2**63, stride=2**62)
    problems = validate(spec)
    assert {p.stage for p in problems} == {0}
    text = " | ".join(str(p) for p in problems)
    assert "padding must be at most 31" in text and "stride must be at most 64" in text
    head = NetworkSpec().model_copy(update={"head": NetworkSpec().head.model_copy(
        update={"pool": "adaptive_avg", "pool_size": 10**9})})
    assert "pool_size must be at most 64" in str(validate(head)[0])


def test_total_stride_is_bounded_and_receptive_fields_stay_real() -> None:
    """Item 8: strides within their own bound can still multiply past anything the input can
    use; that is refused, and a design inside the bounds reports a receptive field computed
    by the hand formula r += (k - 1) * j, j *= s."""
    many = {"input": {"channels": 1, "height": 8, "width": 8},
            "stages": [{"width": 4, "stride": 64, "norm": "none"}] * 3}
    problems = validate(spec_from_dict(many))
    assert "strides multiply to 262,144; at most 4,096" in str(problems[0])
    ok = spec_from_dict({"input": {"channels": 1, "height": 64, "width": 64},
                         "stages": [{"width": 4, "kernel": 3, "stride": 2, "norm": "none"}] * 3})
    r, j = 1, 1
    for _ in range(3):
        r, j = r + 2 * j, j * 2
    assert final_receptive_field(analyse_spec(ok)) == (r, r)


def test_one_layer_over_the_parameter_cap_is_refused() -> None:
    spec = spec_from_dict({"input": {"height": 1024, "width": 1024},
                           "stages": [{"width": 64, "stride": 1}],
                           "head": {"pool": "flatten", "hidden": [8192]}})
    text = str(validate(spec)[0])
    assert "head, hidden 1 (linear 8192): this layer would hold" in text
    assert f"{64 * 1024 * 1024 * 8192:,} parameters" in text


def test_largest_designs_inside_the_bounds_build_and_analyse() -> None:
    """The bounds' corners are legal designs: the analysis answers for them (no overflow)."""
    deepest = spec_from_dict({"input": {"channels": 3, "height": 32, "width": 32},
                              "stages": [{"block": "basic", "depth": 64, "width": 16},
                                         {"block": "basic", "depth": 64, "width": 16}]})
    a = analyse_spec(deepest)
    assert a.depth == 2 * 64 * 2 + 1  # two convs per basic block, plus the classifier
    widest = spec_from_dict({"input": {"channels": 64, "height": 1024, "width": 1024},
                             "stages": [{"width": 8192, "kernel": 1, "stride": 64}],
                             "head": {"pool": "adaptive_avg", "pool_size": 3,
                                      "hidden": [8192] * 16}})
    check(widest)
    a = analyse_spec(widest)
    assert a.num_params == (64 * 8192 + 8192 * 2  # conv (no bias: batch norm follows) + norm
                            + 8192 * 9 * 8192 + 8192 + 15 * (8192 * 8192 + 8192)  # hidden
                            + 8192 * 10 + 10)  # classifier


# -- items 3, 4, 5, 9: the readers ---------------------------------------------------------------
DEEP_JSON = '{"name": ' + "[" * 10_000 + "]" * 10_000 + "}"


def test_deeply_nested_json_yaml_and_share_link() -> None:
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_json(DEEP_JSON)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_yaml("name: " + "[" * 10_000 + "]" * 10_000)
    link = "v1." + base64.urlsafe_b64encode(zlib.compress(DEEP_JSON.encode(), 9)).decode()
    assert len(link) < 200  # the 178-character link
    with pytest.raises(ConfigError, match="nested too deeply"):
        decode_spec(link.rstrip("="))
    with pytest.raises(ConfigError, match="nested more than 12 levels"):
        spec_from_text('{"name": ' + "[" * 40 + "]" * 40 + "}")


def test_cli_deep_nesting_is_one_line(tmp_path: Path) -> None:
    _assert_cli_one_line(_cli(tmp_path, DEEP_JSON), "nested too deeply")


def test_integers_over_4300_digits(tmp_path: Path) -> None:
    big = "9" * 5000
    with pytest.raises(ConfigError, match="not valid JSON"):
        spec_from_text('{"num_classes": ' + big + "}", "a.json")
    with pytest.raises(ConfigError, match="not valid YAML"):
        spec_from_text("num_classes: " + big, "a.yaml")
    _assert_cli_one_line(_cli(tmp_path, '{"num_classes": ' + big + "}"), "not valid JSON")
    _assert_cli_one_line(_cli(tmp_path, "num_classes: " + big, "bad.yaml"), "not valid YAML")


LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)) + "name: *i\n"


@pytest.mark.parametrize("target", ["name", "head.hidden"])
def test_billion_laughs_is_refused_in_bounded_memory(target: str, tmp_path: Path) -> None:
    text = LAUGHS if target == "name" else LAUGHS.replace("name: *i", "head: {hidden: *i}")
    assert len(text) < 400
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as err:
            spec_from_text(text, "laughs.yaml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "aliases" in _one_line(err.value)
    assert peak < 20 * 2**20  # the expansion would take gigabytes
    _assert_cli_one_line(_cli(tmp_path, text, "laughs.yaml"), "aliases")


def test_fan_out_under_the_alias_budget_is_still_bounded() -> None:
    """Fewer aliases than the budget can still expand into many values: the tree walk counts
    every expanded value and stops at the limit."""
    text = "a: &a [" + "1, " * 999 + "1]\nname: [" + "*a, " * 24 + "*a]\n"
    with pytest.raises(ConfigError, match=f"more than {MAX_TREE_NODES:,} values"):
        load_yaml(text)


def test_recursive_yaml_alias_is_refused() -> None:
    with pytest.raises(ConfigError, match="nested more than"):
        load_yaml("name: &a [*a]")


def test_lone_surrogate_and_control_characters_in_names() -> None:
    for text in ('{"name": "\\ud800"}', '{"name": "a\\u0000b"}'):
        with pytest.raises(SpecError) as err:
            spec_from_text(text, "a.json")
        assert "name" in _one_line(err.value)
    assert spec_from_text('{"description": "two\\nlines"}', "a.json").description == "two\nlines"


def test_byte_order_mark_is_accepted_in_json_and_yaml(tmp_path: Path) -> None:
    body = NetworkSpec(name="bom").to_json()
    for name, text in (("a.json", body), ("a.yaml", NetworkSpec(name="bom").to_yaml()),
                       ("", body)):
        assert spec_from_text(("\ufeff" + text).encode("utf-8"), name).name == "bom"
        assert spec_from_text("\ufeff" + text, name).name == "bom"
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    assert main(["analyse", str(path), "--format", "json"]) == 0


def test_check_tree_counts_shared_parts_per_use() -> None:
    leaf = list(range(100))
    shared = [leaf] * 100  # 100 uses of one list: 10,201 values when expanded
    check_tree(shared)
    with pytest.raises(ConfigError):
        check_tree([shared, shared])


def test_bounds_table_matches_the_schema() -> None:
    """Every BOUNDS entry is enforced at both ends (one below/above is refused, the ends pass)."""
    places = {
        "channels": ("input", "channels"), "height": ("input", "height"),
        "input_width": ("input", "width"), "num_classes": (None, "num_classes"),
        "depth": ("stage", "depth"), "width": ("stage", "width"),
        "kernel": ("stage", "kernel"), "stride": ("stage", "stride"),
        "padding": ("stage", "padding"), "expansion": ("stage", "expansion"),
        "norm_groups": ("defaults", "norm_groups"), "pool_size": ("head", "pool_size"),
        "pool_padding": ("pool", "padding"),
    }

    def data(key: str, value: int) -> dict[str, Any]:
        part, field = places[key]
        if part is None:
            return {field: value}
        if part == "stage":
            return {"stages": [{field: value}]}
        if part == "pool":
            return {"stages": [{"pool": {"kernel": 31, field: value}}]}
        return {part: {field: value}}

    for key in places:
        lo, hi = BOUNDS[key]
        for ok in (lo, hi):
            spec_from_dict(data(key, ok))
        for bad in (lo - 1, hi + 1):
            with pytest.raises(SpecError):
                spec_from_dict(data(key, bad))
    assert MAX_TOTAL_DEPTH >= 50  # ResNet-152


# -- the fuzz: only the project's own errors, one line each ------------------------------------
FIELDS = {
    "input": ["channels", "height", "width"],
    "stage": ["block", "depth", "width", "kernel", "stride", "padding", "pool", "activation",
              "norm", "init", "dropout", "residual", "shortcut", "expansion"],
    "head": ["pool", "pool_size", "hidden", "activation", "dropout"],
    "defaults": ["activation", "norm", "norm_groups", "init", "init_std", "dropout", "bias"],
}
_small = st.integers(-3, 40)
_any_int = st.one_of(_small, st.integers(-(2**70), 2**70), st.sampled_from([0, 2**31, 2**63]))
_names = st.sampled_from(["relu", "sigmoid", "batch", "none", "group", "layer", "default",
                          "kaiming", "max", "avg", "adaptive_avg", "flatten", "conv", "basic",
                          "bottleneck", "linear", "same", "pad", "projection", "\ud800", "![x](y)",
                          "", "x" * 300])
_leaf = st.one_of(_any_int, _names, st.floats(allow_nan=True), st.booleans(), st.none(),
                  st.text(max_size=8))
_value = st.recursive(_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(_names, inner, max_size=3)),
                      max_leaves=8)


@st.composite
def spec_dicts(draw: st.DrawFn) -> dict[str, Any]:
    def part(kind: str, field_values: st.SearchStrategy[Any]) -> dict[str, Any]:
        chosen = draw(st.lists(st.sampled_from(FIELDS[kind]), max_size=4, unique=True))
        out: dict[str, Any] = {}
        for f in chosen:
            if f == "pool" and kind == "stage":
                out[f] = draw(st.one_of(st.none(), st.fixed_dictionaries(
                    {"kind": st.sampled_from(["max", "avg", "none"]), "kernel": _small},
                    optional={"stride": _any_int, "padding": _small})))
            elif f == "hidden":
                out[f] = draw(st.lists(st.one_of(_small, _any_int), max_size=4))
            else:
                out[f] = draw(field_values)
        return out

    field_values = st.one_of(_small, _small, _names, _value)
    data: dict[str, Any] = {}
    if draw(st.booleans()):
        data["input"] = part("input", st.one_of(_small, _any_int))
    data["stages"] = [part("stage", field_values)
                      for _ in range(draw(st.integers(0, 3)))]
    for key in ("head", "defaults"):
        if draw(st.booleans()):
            data[key] = part(key, field_values)
    if draw(st.booleans()):
        data[draw(st.sampled_from(["num_classes", "name", "bogus", "stem"]))] = draw(_value)
    return data


def _only_own_errors(action: Any) -> None:
    try:
        action()
    except PlaygroundError as err:
        _one_line(err)


FUZZ = settings(max_examples=600, derandomize=True, deadline=timedelta(seconds=20),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(spec_dicts())
def test_fuzz_specs_give_only_own_one_line_errors(data: dict[str, Any]) -> None:
    def run() -> None:
        spec = spec_from_dict(data)
        check(spec)
        analyse_spec(spec)

    _only_own_errors(run)
    _only_own_errors(lambda: spec_from_text(json.dumps(data), "f.json"))


@FUZZ
@given(spec_dicts(), st.integers(0, 400), st.integers(0, 63))
def test_fuzz_share_links(data: dict[str, Any], cut: int, flip: int) -> None:
    link = encode_state(data)
    for variant in (link, link[: max(3, len(link) - cut)],
                    link[:-2] + chr(ord(link[-2]) ^ (flip % 8)) + link[-1],
                    "v2." + link[3:], link.replace("v1.", "")):
        _only_own_errors(lambda v=variant: decode_spec(v))


@settings(max_examples=300, derandomize=True, deadline=timedelta(seconds=20))
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_fuzz_raw_uploads_and_links(blob: bytes | str) -> None:
    for name in ("a.json", "a.yaml", ""):
        _only_own_errors(lambda n=name: spec_from_text(blob, n))
    text = blob if isinstance(blob, str) else blob.decode("latin-1")
    _only_own_errors(lambda: decode_state("v1." + text))


def test_valid_designs_still_round_trip_through_links() -> None:
    from playground.presets import PRESETS, get_preset

    for name in PRESETS:
        spec = get_preset(name)
        assert decode_spec(encode_spec(spec)) == spec


def test_readme_limits_table_is_the_code_table() -> None:
    from playground.limits import LIMITS_TABLE

    readme = (ROOT / "README.md").read_text()
    for what, bound in LIMITS_TABLE:
        assert f"| {what} | {bound} |" in readme, what
