"""Experiment suites: every registered suite is valid and small; a shrunken suite runs end to
end through the store and the job function, and its results table tells the lesson."""

from __future__ import annotations

import pytest

from playground.build import validate
from playground.errors import ConfigError, PlaygroundError
from playground.experiments import (
    EXPERIMENTS,
    MAX_GRID,
    PLAN_KEY,
    VARY_FIELDS,
    Variant,
    custom_grid,
    get_suite,
    launch,
    list_batches,
    parse_values,
    results_table,
    scale_steps,
    shrink,
    top_up,
)
from playground.jobs import execute_run
from playground.lessons import LESSONS
from playground.presets import get_preset
from playground.runs import RunStore
from playground.targets import analyse_spec
from playground.train import TrainSettings


@pytest.fixture()
def store(tmp_path, monkeypatch) -> RunStore:
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PLAYGROUND_DEVICE", "cpu")
    return RunStore(tmp_path / "playground.sqlite")


class InlineRunner:
    """``start_run`` as the app's runner offers it, but queued runs are executed in-process by
    the same job function the workers call (:func:`playground.jobs.execute_run`)."""

    def __init__(self, store: RunStore):
        self.store = store
        self.started: list[int] = []

    def start_run(self, owner: str, title: str, spec: dict, settings: dict) -> int:
        rid = self.store.create_run(owner, title, spec, settings)
        self.started.append(rid)
        return rid

    def run_all(self) -> None:
        for rid in self.started:
            if self.store.get_run(rid).status == "queued":
                execute_run(rid, self.store.path)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_suite_is_valid_comparable_and_small(name: str) -> None:
    suite = get_suite(name)
    variants = suite.variants()
    assert 2 <= len(variants) <= MAX_GRID
    assert suite.scaled_down and suite.question and suite.look_for
    assert suite.lesson is None or suite.lesson in LESSONS
    assert len({v.title for v in variants}) == len(variants)
    same = {(v.settings.dataset, v.settings.n_train, v.settings.n_val, v.settings.data_seed,
             v.settings.seed) for v in variants}
    assert len(same) == 1, "variants of a suite must share data and seed"
    for v in variants:
        assert validate(v.spec) == [], v.title
        assert Variant.from_dict(v.to_dict()) == v  # JSON round trip, as the plan stores it
        a = analyse_spec(v.spec)
        n_train = v.settings.n_train or 1437
        steps = v.settings.total_steps(n_train)
        # "a few minutes on a laptop CPU": small networks, small inputs, few steps
        assert a.num_params < 500_000 and a.macs < 10_000_000, v.title
        assert steps <= 1000 and steps * v.settings.batch_size <= 30_000, v.title


def test_ladder_titles_follow_the_articles_table() -> None:
    titles = [v.title for v in get_suite("ladder").variants()]
    assert titles == ["Sigmoid", "ReLU", "ReLU + batch norm", "ReLU + BN + clipping",
                      "ReLU + BN + clipping + LR decay"]
    v = get_suite("ladder").variants()
    assert v[0].spec.defaults.activation == "sigmoid" and v[0].spec.defaults.norm == "none"
    assert v[2].spec.defaults.norm == "batch" and v[2].settings.clip_norm is None
    assert v[3].settings.clip_norm and v[4].settings.schedule == "step"


def test_shrunken_ladder_runs_end_to_end_and_shows_vanishing_gradients(store) -> None:
    runner = InlineRunner(store)
    variants = shrink(get_suite("ladder").variants(), steps=3, n_train=256, n_val=64)
    batch = launch(runner.start_run, store, "ada", "ladder", "Ladder", variants, capacity=2)
    assert batch.run_ids[:2] == runner.started and batch.pending == [2, 3, 4]
    assert top_up(runner.start_run, store, "ada", capacity=0) == []
    started = top_up(runner.start_run, store, "ada", capacity=10)
    assert len(started) == 3
    [again] = list_batches(store, "ada")
    assert again.pending == [] and again.run_ids == runner.started
    assert again.titles == [v.title for v in variants]
    assert store.get_meta(again.first_run, PLAN_KEY)["suite"] == "ladder"

    runner.run_all()
    rows = results_table(store, again.run_ids, again.titles)
    assert [r["status"] for r in rows] == ["finished"] * 5
    by = {r["variant"]: r for r in rows}
    sigmoid, relu_bn = by["Sigmoid"], by["ReLU + batch norm"]
    # the vanishing-gradient lesson, measured: the sigmoid's first layer gets almost nothing
    assert sigmoid["grad_first_start"] < 1e-3 * relu_bn["grad_first_start"]
    assert sigmoid["grad_first_start"] < 1e-3 * sigmoid["grad_last_start"]
    assert relu_bn["grad_first_start"] > 1e-2 * relu_bn["grad_last_start"]
    assert all(r["diverged"] is False and r["steps_done"] == 3 for r in rows)
    assert sigmoid["saturated_end"] is not None and by["ReLU"]["dead_end"] is not None
    assert all(r["grad_first_end"] is not None and r["wall_s"] >= 0 for r in rows)


def test_high_learning_rate_diverges_and_clipping_keeps_it_finite(store) -> None:
    runner = InlineRunner(store)
    variants = [v for v in get_suite("lr_clip").variants() if v.title.startswith("lr 1,")]
    assert [v.title for v in variants] == ["lr 1, no clipping", "lr 1, clip 1"]
    variants = shrink(variants, steps=20)
    batch = launch(runner.start_run, store, "bo", "lr_clip", "LR", variants, capacity=4)
    runner.run_all()
    unclipped, clipped = results_table(store, batch.run_ids, batch.titles)
    assert unclipped["diverged"] is True and unclipped["status"].startswith("diverged at step")
    assert clipped["diverged"] is False and clipped["status"] == "finished"


def test_waiting_variants_show_in_the_results_table(store) -> None:
    runner = InlineRunner(store)
    variants = shrink(get_suite("init").variants()[:3], steps=2)
    batch = launch(runner.start_run, store, "cy", "init", "Init", variants, capacity=1)
    rows = results_table(store, batch.run_ids, batch.titles)
    assert rows[0]["status"] == "queued"
    assert rows[1]["status"].startswith("waiting") and rows[1]["run"] is None
    with pytest.raises(PlaygroundError, match="as many runs"):
        launch(runner.start_run, store, "cy", "init", "Init", variants, capacity=0)


def test_custom_grid_varies_one_or_two_fields() -> None:
    spec = get_preset("small_cnn")
    base = TrainSettings(steps=50)
    grid = custom_grid(spec, base, {"lr": parse_values("lr", "0.01, 0.1"),
                                    "defaults.activation": ["sigmoid", "relu"]})
    assert [v.title for v in grid] == [
        "learning rate 0.01, activation (every stage) sigmoid",
        "learning rate 0.01, activation (every stage) relu",
        "learning rate 0.1, activation (every stage) sigmoid",
        "learning rate 0.1, activation (every stage) relu",
    ]
    assert grid[0].settings.lr == 0.01 and grid[0].settings.steps == 50
    assert grid[0].spec.defaults.activation == "sigmoid" and grid[3].spec.stages == spec.stages
    one = custom_grid(spec, base, {"clip_norm": parse_values("clip_norm", "none, 1")})
    assert [v.settings.clip_norm for v in one] == [None, 1.0]
    with pytest.raises(ConfigError, match="one or two"):
        custom_grid(spec, base, {"lr": [0.1], "seed": [1], "steps": [10]})
    with pytest.raises(ConfigError, match="at most"):
        custom_grid(spec, base, {"lr": [0.1 * i for i in range(1, 5)],
                                 "seed": list(range(4))})
    with pytest.raises(ConfigError, match="cannot be varied"):
        custom_grid(spec, base, {"dataset": ["digits"]})
    with pytest.raises(PlaygroundError, match="batch size 0"):
        custom_grid(spec, base, {"batch_size": [0, 64]})


@pytest.mark.parametrize(("name", "text", "message"), [
    ("lr", "0.1, fast", "'fast' is not a number"),
    ("lr", "nan", "is not a number"),
    ("batch_size", "1.5", "not a whole number"),
    ("optimizer", "adam, sgdd", "'sgdd' is not one of"),
    ("lr", " , ", "at least one value"),
    ("width", "1", "cannot be varied"),
])
def test_parse_values_explains_bad_input(name: str, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_values(name, text)


def test_vary_fields_offer_valid_examples() -> None:
    spec, base = get_preset("small_cnn"), TrainSettings()
    for name, f in VARY_FIELDS.items():
        values = parse_values(name, f.example)
        assert len(custom_grid(spec, base, {name: values})) == len(values)


def test_quick_preview_scales_steps_evaluations_and_decay_points() -> None:
    ladder = scale_steps(get_suite("ladder").variants(), 0.2)
    assert all(v.settings.steps == 60 for v in ladder)
    assert ladder[-1].settings.schedule_params["step_size"] == 40  # 2/3 of the run, as before
    assert all(v.settings.eval_every <= 15 for v in ladder)
    batch = scale_steps(get_suite("batch_lr").variants(), 0.2)  # given in epochs
    assert [v.settings.epochs for v in batch] == [None] * 6
    assert batch[0].settings.steps == 150 and batch[-1].settings.steps == 10  # 750 and 47 steps
