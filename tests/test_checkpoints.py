"""Checkpoints: the weights a run keeps reproduce its stored validation accuracy exactly when
loaded into a freshly built model, on SQLite and on a real PostgreSQL server; they are
safetensors, capped, owner-checked and deleted with their run."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
import torch
from safetensors import safe_open

from playground import checkpoints, results
from playground.access import SYSTEM, AccessDenied, Actor, teacher
from playground.build import build_model
from playground.errors import PlaygroundError
from playground.jobs import execute_run
from playground.presets import get_preset
from playground.runs import RunStore
from playground.spec import InputSpec, spec_from_dict
from playground.store.schema import checkpoints as table
from playground.train import _evaluate, _prepare_data, settings_from_dict

ADA = Actor("ada")


def _settings(**kw: object) -> dict:
    base = {"dataset": "shapes", "steps": 30, "batch_size": 32, "lr": 0.05, "eval_every": 10,
            "n_train": 256, "n_val": 96, "device": "cpu", "seed": 3}
    base.update(kw)
    return base


def _small_cnn() -> dict:
    return get_preset("small_cnn", input=InputSpec(channels=3, height=16, width=16)).to_dict()


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PLAYGROUND_DEVICE", "cpu")
    monkeypatch.delenv("PLAYGROUND_MAX_CHECKPOINT_MB", raising=False)
    return monkeypatch


def _val_acc(run, model) -> float:
    """The validation accuracy of ``model`` on the run's validation split, computed as the
    trainer computes it (an independent rebuild of the data from the stored settings)."""
    spec = spec_from_dict(run.spec)
    settings = settings_from_dict(run.settings)
    data = _prepare_data(spec, settings, None, torch.device("cpu"))
    return _evaluate(model, data.val_x, data.val_y, lambda: torch.autocast("cpu",
                                                                             enabled=False))[1]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_loaded_weights_reproduce_the_stored_accuracies_exactly(backend, env, request,
                                                                tmp_path) -> None:
    url = (str(tmp_path / "s.sqlite") if backend == "sqlite"
           else request.getfixturevalue("postgres_url"))
    store = RunStore(url)
    rid = store.create_run("ada", "cnn", _small_cnn(), _settings())
    assert execute_run(rid, store.url) == "finished"
    run = store.get_run(rid)
    infos = {i.kind: i for i in checkpoints.list_checkpoints(store, rid, ADA)}
    assert set(infos) == {"final", "best"}
    assert infos["final"].step == 30 == run.summary["steps_done"]
    assert infos["final"].val_acc == run.summary["final_val_acc"]
    assert infos["best"].step == run.summary["best_val_step"]
    assert infos["best"].val_acc == run.summary["best_val_acc"]
    data = results.validation_data(spec_from_dict(run.spec), settings_from_dict(run.settings))
    for kind in ("final", "best"):
        model, _, info = checkpoints.load_model(store, rid, kind, ADA)
        # a freshly built model (different initial weights) with the stored weights loaded
        assert _val_acc(run, model) == info.val_acc
        # the predictions stored with the weights are those the weights make now
        stored = checkpoints.load_predictions(store, rid, kind, ADA)
        now = results.evaluate(model, data)
        kept = results.evaluation_from_predictions(data, stored.pred, stored.conf, 10,
                                                   stored.val_loss)
        assert kept.accuracy == now.accuracy == info.val_acc
        assert kept.loss == now.loss
        assert np.array_equal(kept.pred, now.pred)
        assert np.array_equal(kept.confidence, now.confidence)
        assert np.array_equal(kept.confusion, now.confusion)
        assert kept.confusion.sum() == data.n
    # the final weights are not the best ones unless the best evaluation was the last
    final, _ = checkpoints.load_state(store, rid, "final", ADA)
    best, _ = checkpoints.load_state(store, rid, "best", ADA)
    same = all(torch.equal(final[k], best[k]) for k in final)
    assert same == (infos["best"].step == 30)
    assert run.summary["checkpoints"] == ["final", "best"]


def test_the_stored_bytes_are_safetensors_with_every_tensor(env, tmp_path) -> None:
    store = RunStore(tmp_path / "s.sqlite")
    rid = store.create_run("ada", "cnn", _small_cnn(), _settings(steps=10))
    execute_run(rid, store.url)
    data, info = checkpoints.checkpoint_bytes(store, rid, "final", ADA)
    assert info.nbytes == len(data)
    path = tmp_path / "w.safetensors"
    path.write_bytes(data)
    expected = build_model(spec_from_dict(store.get_run(rid).spec)).state_dict()
    with safe_open(str(path), framework="pt") as f:  # the reference reader
        assert set(f.keys()) == set(expected)
        assert f.metadata()["kind"] == "final"
        for k in expected:
            assert f.get_tensor(k).shape == expected[k].shape
    with pytest.raises(PlaygroundError, match="cannot be read"):
        checkpoints.from_bytes(b"\x00" * 16 + b"not safetensors")


def test_a_model_over_the_cap_keeps_its_metrics_and_says_why(env, tmp_path) -> None:
    env.setenv("PLAYGROUND_MAX_CHECKPOINT_MB", "0.01")  # 10 kB: smaller than small_cnn
    store = RunStore(tmp_path / "s.sqlite")
    rid = store.create_run("ada", "cnn", _small_cnn(), _settings(steps=10))
    assert execute_run(rid, store.url) == "finished"
    assert checkpoints.list_checkpoints(store, rid, ADA) == []
    assert store.get_metrics(rid, ["loss"])["loss"]["steps"][-1] == 10
    note = store.get_meta(rid, "weights_note")
    assert "0.01 MB" in note and "PLAYGROUND_MAX_CHECKPOINT_MB" in note
    with pytest.raises(PlaygroundError, match="no final weights: no weights kept"):
        checkpoints.checkpoint_bytes(store, rid, "final", ADA)


def test_weights_are_read_only_by_their_owner_or_the_teacher_and_go_with_the_run(
        env, tmp_path) -> None:
    store = RunStore(tmp_path / "s.sqlite")
    rid = store.create_run("ada", "points", get_preset("mlp_points").to_dict(),
                           _settings(dataset="spirals", steps=10, n_train=128, n_val=64))
    execute_run(rid, store.url)
    with pytest.raises(AccessDenied):
        checkpoints.checkpoint_bytes(store, rid, "best", Actor("bob"))
    with pytest.raises(AccessDenied):
        checkpoints.list_checkpoints(store, rid, Actor("bob"))
    with pytest.raises(AccessDenied):
        checkpoints.load_predictions(store, rid, "best", Actor("bob"))
    assert len(checkpoints.list_checkpoints(store, rid, teacher())) == 2
    store.delete_run(rid, by=ADA)
    assert store.database.read(sa.select(sa.func.count()).select_from(table)) == [(0,)]
    with pytest.raises(PlaygroundError, match="no run"):
        checkpoints.list_checkpoints(store, rid, SYSTEM)


def test_a_diverged_run_keeps_only_its_best_weights(env, tmp_path) -> None:
    store = RunStore(tmp_path / "s.sqlite")
    rid = store.create_run("ada", "too hot", _small_cnn(),
                           _settings(lr=1e6, steps=60, eval_every=1, optimizer="sgd"))
    status = execute_run(rid, store.url)
    assert status == "diverged"
    kinds = [i.kind for i in checkpoints.list_checkpoints(store, rid, ADA)]
    assert "final" not in kinds
    if kinds:  # an evaluation ran before it diverged: its weights are finite
        state, _ = checkpoints.load_state(store, rid, "best", ADA)
        assert all(torch.isfinite(v.float()).all() for v in state.values())
