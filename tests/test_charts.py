"""Chart builders: log-axis ticks (decades, 1-2-5 on short ranges, never crowded) and colours
left to the app's theme. The browser test tests/browser/test_theme_browser.py checks what
Chromium paints in the light and dark themes."""

from __future__ import annotations

import itertools
import math
import re

import plotly.graph_objects as go
import pytest

from playground.presets import get_preset
from playground.targets import analyse_spec
from ui.charts import (
    THEME_TEXT,
    bar_compare,
    feature_map_chart,
    log_ticks,
    per_layer_bars,
    receptive_field_chart,
)
from ui.compare_charts import figures_html, layer_bars, stage_bars
from ui.learn_charts import LESSON_CHARTS
from ui.run_charts import (
    activation_stats_chart,
    grad_norm_chart,
    gradient_flow_chart,
    layer_heatmap,
    layer_lines_chart,
    loss_chart,
    scalar_chart,
)

SUP = "10<sup>{}</sup>"


def _visible(axis: go.layout.YAxis, lo: float, hi: float) -> list[tuple[float, str]]:
    """The (value, label) ticks of ``axis`` that fall inside the data range ``lo``..``hi``."""
    return [(v, t) for v, t in zip(axis.tickvals, axis.ticktext, strict=True)
            if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)]


def _stage_entry(values: list[float]) -> tuple[str, str, list[dict[str, float | str]]]:
    names = ["stem"] + [f"stage{i}" for i in range(1, len(values) - 1)] + ["head"]
    return ("A", "#1f77b4", [{"name": n, "params": v} for n, v in zip(names, values,
                                                                       strict=True)])


# -- log axes: the intended ticks for 1, 3 and 12 decades --------------------------------------
def test_one_decade_labels_1_2_5() -> None:
    fig = bar_compare(["a", "b", "c"], [10, 40, 100], "Parameters", "count", log_y=True)
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.tickmode == "array"
    assert _visible(fig.layout.yaxis, 10, 100) == [
        (10, "10"), (20, "20"), (50, "50"), (100, "100")]


def test_three_decades_on_compares_stage_chart_label_decades_only() -> None:
    fig = stage_bars([_stage_entry([2_000, 40_000, 300_000, 2_000_000])], "params",
                     "Parameters per stage", "parameters", log_y=True)
    assert _visible(fig.layout.yaxis, 2_000, 2_000_000) == [
        (1e4, "10k"), (1e5, "100k"), (1e6, "1M")]


def test_twelve_decades_of_gradient_norm_label_every_decade_as_a_power() -> None:
    fig = gradient_flow_chart([("run", "#1f77b4", ["l1", "l2", "l3", "l4"],
                                [1e-8, 1e-4, 1.0, 1e4])])
    expected = [(10.0**n, SUP.format(f"\u2212{-n}")) for n in range(-8, 0)]
    expected += [(1, "1"), (10, "10"), (100, "100"), (1e3, SUP.format(3)),
                 (1e4, SUP.format(4))]
    got = _visible(fig.layout.yaxis, 1e-8, 1e4)
    assert [t for _, t in got] == [t for _, t in expected]
    assert [v for v, _ in got] == pytest.approx([v for v, _ in expected], rel=1e-12)


def test_very_wide_ranges_thin_the_decades_and_keep_one() -> None:
    values, labels = log_ticks(1e-30, 1.0)
    assert labels[-1] == "1" and len(labels) <= 13
    assert all(math.log10(b / a) == pytest.approx(3) for a, b in itertools.pairwise(values))


# -- log axes: never crowded, labels say their value -------------------------------------------
def _label_value(label: str) -> float:
    """Read a tick label back as a number (the oracle for what log_ticks wrote)."""
    label = label.replace("\u2212", "-")
    if m := re.fullmatch(r"(?:([\d.]+)\u00d7)?10<sup>(-?\d+)</sup>", label):
        return float(m[1] or 1) * 10.0 ** int(m[2])
    m = re.fullmatch(r"([\d.]+)([kMGTP]?)", label)
    assert m, f"unexpected tick label {label!r}"
    return float(m[1]) * 10.0 ** (3 * " kMGTP".index(m[2] or " "))


RANGES = [(10.0**a, 10.0 ** (a + s)) for a in (-12.3, -7.0, -2.5, -0.2, 0.0, 1.7, 4.0, 8.1)
          for s in (0.02, 0.1, 0.3, 0.5, 0.9, 1.0, 1.5, 2.0, 2.2, 3.0, 5.5, 12.0, 17.0)]


@pytest.mark.parametrize(("lo", "hi"), RANGES, ids=lambda v: f"{v:.3g}")
def test_visible_tick_labels_are_spaced_and_read_back_as_their_values(lo: float,
                                                                      hi: float) -> None:
    values, labels = log_ticks(lo, hi)
    assert values == sorted(values) and len(set(labels)) == len(labels)
    for v, text in zip(values, labels, strict=True):
        assert _label_value(text) == pytest.approx(v, rel=1e-9), text
    shown = [v for v in values if lo <= v <= hi]
    span = math.log10(hi / lo)
    assert len(shown) >= 2 and len(shown) <= 13, (shown, span)
    gaps = [math.log10(b / a) for a, b in itertools.pairwise(shown)]
    # on an axis of 250 px no two labels closer than 1/15 of it (about 17 px, a text line)
    assert min(gaps) >= span / 15, (labels, span)
    mantissas = {round(v / 10.0 ** math.floor(math.log10(v) + 1e-9), 6) for v in shown}
    if 1 <= span <= 2:  # a decade or two: 2 and 5 labelled as well
        assert {1, 2, 5} <= mantissas, labels
    if span >= 3:  # decades only (between 2 and 3, 1-2-5 when fewer than 3 decades show)
        assert all(math.log10(v) == pytest.approx(round(math.log10(v))) for v in shown)


def test_log_ticks_refuse_a_non_positive_range() -> None:
    with pytest.raises(ValueError):
        log_ticks(0.0, 1.0)


# -- every log axis goes through log_ticks -----------------------------------------------------
def _series(*pairs: tuple[str, list]) -> dict[str, dict[str, list]]:
    return {name: {"steps": list(range(1, len(v) + 1)), "values": v} for name, v in pairs}


def _log_figures() -> list[go.Figure]:
    rows = analyse_spec(get_preset("small_cnn")).rows
    metrics = _series(("loss", [2.3, 1.9, 1.2, 0.7]), ("val_loss", [2.2, 1.5]),
                      ("grad_norm", [30.0, 4.0, 0.5, 0.01]),
                      ("grad_norm_clipped", [1.0, 1.0, 0.5, 0.01]),
                      ("grad_norm_layer", [[1e-6, 1e-2, 1.0], [1e-5, 1e-1, 3.0]]))
    items = [("run", "#1f77b4", metrics)]
    lessons = {
        "gradients": {"depth": 3, "lines": [{"label": "sigmoid", "ratio": 1e-4,
                                             "layers": ["1", "2", "3"],
                                             "grad_norm": [1e-5, 1e-3, 0.1]}]},
        "init": {"depth": 3, "activation": "relu", "width": 8,
                 "lines": [{"label": "He", "std": [1.0, 0.8, 1e-3]}]},
        "clipping": {"clip": 1.0, "runs": [{"label": "off", "status": "diverged",
                                             "steps": [1, 2, 3], "grad_norm": [2.0, 1e3, 1e9],
                                             "loss_steps": [1, 2], "loss": [2.3, 40.0]}]},
        "optimizers": {"grid_x": [-1, 0, 1], "grid_y": [-1, 0, 1],
                       "grid_z": [[5.5, 5, 5.5], [0.5, 0, 0.5], [5.5, 5, 5.5]],
                       "paths": [{"title": "SGD", "lr": 0.1, "x": [1, 0.5], "y": [1, 0.2],
                                  "loss": [5.5, 0.45, 1e-6]}]},
        "batch": {"sizes": [1, 4, 16, 256], "rel_error": [3.0, 1.5, 0.7, 0.2],
                  "reference": [3.0, 1.5, 0.75, 0.19]},
        "costs": {"batch_size": 32, "models": [
            {"label": "a", "params": 61_706, "macs": 416_520,
             "memory": {"weights": 1e6, "gradients": 1e6, "optimizer_state": 2e6,
                        "activations": 5e6}}]},
    }
    return [
        per_layer_bars(rows, "num_params", "Parameters", "parameters", log_y=True),
        per_layer_bars(rows, "macs", "MACs", "MACs", log_y=True),
        bar_compare(["a", "b"], [61_706, 138_357_544], "Params", "parameters", log_y=True),
        stage_bars([_stage_entry([2e3, 4e4, 2e6])], "params", "Per stage", "n", log_y=True),
        layer_bars([("A", "#1f77b4", rows)], "num_params", "Per layer", "n"),
        scalar_chart(items, [("loss", "train")], "Loss", "loss (log)", log_y=True),
        grad_norm_chart(items, [True]),
        layer_lines_chart(metrics, ["a", "b", "c"]),
        gradient_flow_chart([("run", "#1f77b4", ["a", "b"], [1e-7, 2.0])]),
        *(fig for lesson, data in lessons.items() for fig in LESSON_CHARTS[lesson](data)),
    ]


def _axes(fig: go.Figure) -> list[tuple[str, go.layout.XAxis | go.layout.YAxis]]:
    return [(k, fig.layout[k]) for k in fig.layout.to_plotly_json()
            if k.startswith(("xaxis", "yaxis"))]


def test_every_log_axis_gets_ticks_from_its_data() -> None:
    log_axes = 0
    for fig in _log_figures():
        for name, axis in _axes(fig):
            if axis.type != "log":
                continue
            log_axes += 1
            letter, ref = name[0], name[0] + name[5:]
            data = [v for t in fig.data if (getattr(t, f"{letter}axis") or letter) == ref
                    for v in (getattr(t, letter) or ()) if isinstance(v, int | float) and v > 0]
            assert axis.tickmode == "array", (fig.layout.title.text, name)
            assert len(_visible(axis, min(data), max(data))) >= 2, (fig.layout.title.text, name)
            assert list(axis.ticktext) == log_ticks(min(data), max(data))[1] or any(
                s.yref == ref for s in fig.layout.shapes)  # a line drawn on it widens it
    assert log_axes >= 17  # every figure above has one; the batch lesson two


# -- colours come from the theme ---------------------------------------------------------------
def _all_figures() -> list[go.Figure]:
    rows = analyse_spec(get_preset("small_cnn")).rows
    metrics = _series(("grad_norm_layer", [[1e-6, 1e-2], [1e-5, 1e-1]]),
                      ("act_dead", [[0.1, 0.5]]), ("act_std", [[1.0, 0.3]]),
                      ("loss", [2.3, 1.0]))
    return [*_log_figures(), feature_map_chart(rows), receptive_field_chart(rows, 32),
            layer_heatmap(metrics, ["a", "b"]), activation_stats_chart(metrics, ["a", "b"]),
            loss_chart([("run", "#1f77b4", metrics)]),
            *LESSON_CHARTS["schedules"]({"steps": [0, 1], "curves": [
                {"title": "constant", "params": {}, "lr": [0.1, 0.1]}]})]


def test_charts_leave_backgrounds_to_the_theme_and_write_text_in_its_colour() -> None:
    """Streamlit merges its light or dark theme into ``layout.template``; a background, grid
    or text colour set on the layout would win over it (the white charts of the dark theme).
    Text uses Streamlit's placeholder for the theme's text colour, on every axis."""
    for fig in _all_figures():
        where = fig.layout.title.text
        assert fig.layout.paper_bgcolor is None and fig.layout.plot_bgcolor is None, where
        assert fig.layout.font.color == THEME_TEXT, where
        for name, axis in _axes(fig):
            assert axis.gridcolor is None and axis.zerolinecolor is None, (where, name)
            assert axis.tickfont.color == THEME_TEXT, (where, name)
            assert axis.title.font.color == THEME_TEXT, (where, name)


def test_offline_html_draws_the_figures_on_plotlys_light_template() -> None:
    page = figures_html([bar_compare(["a", "b"], [1, 2], "t", "n")])
    assert '"paper_bgcolor":"white"' in page and '"plot_bgcolor":"white"' in page


def _relative_luminance(hex_colour: str) -> float:
    """WCAG 2.1's relative luminance of an sRGB colour "#rrggbb" (its definition, by hand)."""
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_experiment_line_colours_stand_out_on_the_dark_theme() -> None:
    """Lines need 3:1 against the background (WCAG 1.4.11, non-text contrast); Streamlit's
    dark theme paints charts on #0e1117. "#393b79" had 1.9:1. The light theme is checked in
    Chromium by tests/browser/test_theme_browser.py."""
    from ui.compare_experiments import COLORS

    background = _relative_luminance("#0e1117")
    assert _relative_luminance("#000000") == 0.0 and _relative_luminance("#ffffff") == 1.0
    assert len(COLORS) == len(set(COLORS)) == 12
    for colour in COLORS:
        ratio = (_relative_luminance(colour) + 0.05) / (background + 0.05)
        assert ratio >= 3.0, (colour, round(ratio, 2))
