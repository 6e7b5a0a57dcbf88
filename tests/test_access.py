"""Classroom identity and owner checks (issue 12), against real SQLite and PostgreSQL stores and
a real local runner training a real network.

Oracles: ``hashlib.sha256`` for what the store keeps of a key; the stores' own rows, read back
after a refused action, for "nothing changed"; the run's record for who stopped it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from playground.access import SYSTEM, AccessDenied, Actor, teacher
from playground.classroom import ClassSettings, ClassStore, class_rows, enforce
from playground.compare import design_item, run_item
from playground.designs import DesignStore
from playground.errors import ConfigError, PlaygroundError
from playground.identity import (
    IdentityStore,
    NameTaken,
    codes_match,
    hash_key,
    login_owner,
    teacher_code_ok,
)
from playground.presets import get_preset
from playground.runners import make_runner
from playground.runs import RunStore
from playground.store.schema import identities
from tests.test_jobs import LIVENESS_S, MLP, _settings, env, wait_done, wait_for

ADA, BOB, TEACHER = Actor("Ada"), Actor("Bob"), teacher()


# -- keys --------------------------------------------------------------------------------------
def test_a_claimed_name_opens_only_with_its_key(db_url: str) -> None:
    ids = IdentityStore(db_url)
    key = ids.claim("Ada")
    assert len(key) >= 43 and ids.is_claimed("ada")  # names match like owners: case-folded
    assert ids.authenticate("ADA", key) == Actor("Ada")
    # the store keeps the key's SHA-256, never the key itself
    with ids.database.reading() as con:
        stored = con.execute(sa.select(identities.c.key_hash, identities.c.owner)).all()
    assert stored == [(hashlib.sha256(key.encode()).hexdigest(), "Ada")]
    assert key not in repr(stored)
    for wrong in ("", key[:-1], key + "x", key.upper(), "x" * 10_000):
        with pytest.raises(NameTaken, match="taken"):
            ids.authenticate("Ada", wrong)
    with pytest.raises(AccessDenied, match="nobody has claimed the name Bob"):
        ids.authenticate("Bob", key)  # nobody claimed Bob: no key opens it either
    with pytest.raises(NameTaken, match="the name ada is taken"):
        ids.claim("  ada ")  # a second claim of the same name
    assert [i.name for i in ids.list_identities()] == ["Ada"]


def test_only_the_teacher_resets_a_key_and_the_old_one_stops_working(db_url: str) -> None:
    ids = IdentityStore(db_url)
    old = ids.claim("Ada")
    with pytest.raises(AccessDenied, match="only the teacher"):
        ids.reset("Ada", by=Actor("Ada"))
    assert ids.authenticate("Ada", old) == ADA  # the refused reset changed nothing
    new = ids.reset("Ada", by=TEACHER)
    assert new != old and ids.authenticate("Ada", new) == ADA
    with pytest.raises(NameTaken):
        ids.authenticate("Ada", old)
    with pytest.raises(AccessDenied, match="nobody has claimed"):
        ids.reset("Zoe", by=TEACHER)


def test_the_class_code_is_asked_for_once_per_claim(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PLAYGROUND_CLASS_CODE", "otter-42")
    ids = IdentityStore(tmp_path / "p.sqlite")
    for wrong in ("", "otter-4", "OTTER-42", "otter-42 x"):
        with pytest.raises(AccessDenied, match="class code"):
            ids.claim("Ada", wrong)
    assert not ids.is_claimed("Ada")  # a refused claim keeps the name free
    key = ids.claim("Ada", "otter-42")
    assert ids.authenticate("Ada", key) == ADA  # coming back needs the key, not the code


def test_codes_compare_exactly_and_an_unset_code_opens_nothing(monkeypatch) -> None:
    assert codes_match("s3cret", "s3cret") and not codes_match("s3cre", "s3cret")
    assert not codes_match("", "") and not codes_match("anything", "")
    assert hash_key("k") == hashlib.sha256(b"k").hexdigest()
    monkeypatch.delenv("PLAYGROUND_TEACHER_CODE", raising=False)
    assert not teacher_code_ok("") and not teacher_code_ok("x")
    monkeypatch.setenv("PLAYGROUND_TEACHER_CODE", "chalk")
    assert teacher_code_ok("chalk") and not teacher_code_ok("Chalk")


def test_an_openid_login_owns_by_its_verified_address_else_by_its_subject() -> None:
    iss = "https://id.school.example"
    # a verified address (or a provider that does not say) is the owner, as typed
    assert login_owner({"email": "ada@school.example", "email_verified": True}) == \
        "ada@school.example"
    assert login_owner({"email": " ada@school.example\n", "sub": "1"}) == "ada@school.example"
    # over 64 characters: 55 kept, "~" and 8 hex digits of SHA-256 of the lower-cased address
    long = "a" * 60 + "@school.example"
    tag = hashlib.sha256(long.lower().encode()).hexdigest()[:8]
    assert login_owner({"email": long}) == "a" * 55 + "~" + tag
    assert len(login_owner({"email": long})) == 64
    assert login_owner({"email": long[:-1] + "g"}) != login_owner({"email": long})
    # unverified: the display name tagged with SHA-256("<iss> <sub>"), never the address alone
    sub_tag = hashlib.sha256(f"{iss} 42".encode()).hexdigest()[:8]
    unverified = {"email": "ada@school.example", "email_verified": False, "name": "Bob",
                  "iss": iss, "sub": "42"}
    assert login_owner(unverified) == f"Bob #{sub_tag}"
    assert login_owner({**unverified, "email_verified": "false", "name": ""}) == \
        f"ada@school.example #{sub_tag}"
    # no address: two people called Ada stay apart by their subjects
    one = login_owner({"name": "Ada", "iss": iss, "sub": "1"})
    two = login_owner({"name": "Ada", "iss": iss, "sub": "2"})
    assert one.startswith("Ada #") and two.startswith("Ada #") and one != two
    assert login_owner({"iss": iss, "sub": "1"}).startswith("user #")
    # nothing to own by: not logged in
    assert login_owner({}) == "" and login_owner({"name": "Ada"}) == ""
    assert login_owner({"email": "", "email_verified": True}) == ""


# -- owner checks in the stores ----------------------------------------------------------------
def test_the_run_store_refuses_other_students_and_records_who_stopped(db_url: str) -> None:
    store = RunStore(db_url)
    rid = store.create_run("Ada", "net", MLP, _settings())
    assert store.get_run(rid, by=Actor("ada")).owner == "Ada"
    with pytest.raises(AccessDenied, match=f"run #{rid} belongs to someone else"):
        store.get_run(rid, by=BOB)
    with pytest.raises(AccessDenied):
        store.request_stop(rid, by=BOB)
    assert not store.stop_requested(rid) and store.get_run(rid).stopped_by is None
    store.request_stop(rid, by=TEACHER)
    store.request_stop(rid, by=ADA)  # the first to ask is the one recorded
    assert store.stop_requested(rid) and store.get_run(rid).stopped_by == "the teacher"
    store.set_status(rid, "stopped", "stopped")
    with pytest.raises(AccessDenied):  # nor can Compare put it next to Bob's runs
        run_item(store, rid, by=BOB)
    assert run_item(store, rid, by=ADA).run.id == rid
    with pytest.raises(AccessDenied):
        store.delete_run(rid, by=BOB)
    assert store.find_run(rid) is not None
    store.delete_run(rid, by=ADA)
    assert store.find_run(rid) is None


def test_the_design_store_refuses_other_students(db_url: str) -> None:
    designs = DesignStore(db_url)
    net = get_preset("mlp_points")
    designs.save_design("Ada", "mine", net, by=ADA)
    with pytest.raises(AccessDenied):
        designs.save_design("Ada", "mine", get_preset("small_cnn"), by=BOB)  # overwrite
    with pytest.raises(AccessDenied):
        designs.save_design("Ada", "planted", net, by=BOB)
    with pytest.raises(AccessDenied):
        designs.delete_design("Ada", "mine", by=BOB)
    with pytest.raises(AccessDenied):
        designs.load_design("Ada", "mine", by=BOB)
    with pytest.raises(AccessDenied):
        designs.list_designs("Ada", by=BOB)
    with pytest.raises(AccessDenied):
        design_item("Ada", "mine", by=BOB, path=db_url)
    assert [d.name for d in designs.list_designs("Ada", by=TEACHER)] == ["mine"]
    assert designs.load_design("Ada", "mine", by=ADA) == net  # untouched by Bob's attempts
    assert designs.delete_design("Ada", "mine", by=TEACHER)


# -- class settings ----------------------------------------------------------------------------
def test_class_settings_bind_students_and_not_the_teacher() -> None:
    rules = ClassSettings(max_steps=100, datasets=["spirals"], presets=["mlp_points"],
                          locked={"optimizer": "adam", "lr": 0.001})
    ok = {"steps": 100, "dataset": "spirals", "optimizer": "adam", "lr": 1e-3}
    enforce(ok, get_preset("mlp_points").to_dict(), rules, ADA)
    enforce(ok, {"name": "my own"}, rules, ADA)  # the student's own design is not a preset
    cases = [
        ({**ok, "steps": 101}, "mlp_points", "at most 100 steps"),
        ({**ok, "dataset": "moons"}, "mlp_points", "data sets in this class: spirals"),
        ({**ok, "optimizer": "sgd"}, "mlp_points", "fixed optimiser at 'adam'"),
        ({**ok, "lr": 0.01}, "mlp_points", "fixed learning rate at 0.001"),
        (ok, "small_cnn", "does not offer the preset small_cnn"),
    ]
    for settings, preset, message in cases:
        with pytest.raises(ConfigError, match=message):
            enforce(settings, get_preset(preset).to_dict(), rules, ADA)
        enforce(settings, get_preset(preset).to_dict(), rules, TEACHER)  # exempt


def test_class_settings_are_stored_for_every_server_and_only_the_teacher_sets_them(
        db_url: str) -> None:
    store = ClassStore(db_url)
    assert store.get() == ClassSettings()
    rules = ClassSettings(queue_limit=2, message="Open the deep sigmoid MLP",
                          message_link="preset:deep_sigmoid_mlp", locked={"steps": 300})
    with pytest.raises(AccessDenied, match="only the teacher"):
        store.save(rules, by=ADA)
    assert store.get() == ClassSettings()
    store.save(rules, by=TEACHER)
    assert ClassStore(db_url).get() == rules  # another server's store reads the same
    with pytest.raises(PlaygroundError):
        store.save({"locked": {"steps": 0}}, by=TEACHER)  # not a valid training setting
    with pytest.raises(PlaygroundError):
        store.save({"message_link": "preset:nope"}, by=TEACHER)
    assert store.get() == rules  # refused saves keep what was stored


# -- the runner --------------------------------------------------------------------------------
__all__ = ["env"]  # the runner's workers inherit its limits (room for long runs)


@pytest.fixture(scope="module")
def class_runner(env, tmp_path_factory) -> Iterator:
    runner = make_runner("local", store=tmp_path_factory.mktemp("cls") / "p.sqlite",
                         workers=1, max_queued=8)
    assert runner.wait_ready(LIVENESS_S), runner.status()
    yield runner
    runner.shutdown()


def test_only_the_owner_or_the_teacher_stops_a_run_and_the_run_says_who(class_runner) -> None:
    store = class_runner.store
    running = class_runner.start_run("Ada", "long", MLP, _settings(200_000))
    queued = class_runner.start_run("Ada", "waiting", MLP, _settings(200_000))
    wait_for(lambda: store.last_step(running) >= 5)
    for rid in (running, queued):
        with pytest.raises(AccessDenied):
            class_runner.cancel(rid, by=BOB)
    assert store.get_run(queued).status == "queued" and not store.stop_requested(running)
    assert store.last_step(running) < 200_000 and store.get_run(running).status == "running"
    assert class_runner.cancel(queued, by=TEACHER) == "stopped"
    assert store.get_run(queued).message == "stopped before it started by the teacher"
    class_runner.cancel(running, by=ADA)
    assert wait_done(store, running) == "stopped"
    message = store.get_run(running).message
    assert message.startswith("stopped at step ") and message.endswith("on request of Ada")


def test_the_runner_applies_the_class_settings_at_start(class_runner) -> None:
    store = class_runner.store
    ClassStore(store.url).save(ClassSettings(queue_limit=1, max_steps=50), by=TEACHER)
    try:
        before = len(store.list_runs())
        with pytest.raises(ConfigError, match="at most 50 steps"):
            class_runner.start_run("Cy", "too long", MLP, _settings(51))
        assert len(store.list_runs()) == before  # a refused run is not stored
        first = class_runner.start_run("Cy", "ok", MLP, _settings(50))
        with pytest.raises(PlaygroundError, match=r"limit is 1 \(the class settings\)"):
            class_runner.start_run("Cy", "second", MLP, _settings(50))
        extra = class_runner.start_run(teacher("Cy"), "teacher's", MLP, _settings(60))
        rows = {r["run"]: r for r in class_rows(store, owner="Cy", by=TEACHER)}
        assert set(rows) == {first, extra}
        assert rows[first]["params"] == 626 and rows[first]["dataset"] == "spirals"
        with pytest.raises(AccessDenied):
            class_rows(store, by=ADA)
        for rid in (first, extra):
            wait_done(store, rid)
    finally:
        ClassStore(store.url).save(ClassSettings(), by=SYSTEM)
