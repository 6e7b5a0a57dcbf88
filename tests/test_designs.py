"""Saved designs: save, list, load, overwrite, delete; owners kept apart; clear errors.

Every test runs on a SQLite file and on a real PostgreSQL database (``db_url`` in conftest.py).
"""

from __future__ import annotations

import pytest

from playground.access import SYSTEM
from playground.designs import (
    MAX_NAME_CHARS,
    DesignStore,
    delete_design,
    list_designs,
    load_design,
    save_design,
)
from playground.errors import PlaygroundError, SpecError
from playground.presets import get_preset


@pytest.fixture()
def designs(db_url: str) -> DesignStore:
    return DesignStore(db_url)


def test_save_list_load_overwrite_delete(designs: DesignStore) -> None:
    mlp = get_preset("mlp_points")
    cnn = get_preset("small_cnn")
    saved = designs.save_design("Ada", "my net", mlp, by=SYSTEM)
    assert saved.name == "my net" and saved.owner == "Ada"
    designs.save_design("Ada", "cnn", cnn, by=SYSTEM)
    assert {d.name for d in designs.list_designs("Ada")} == {"my net", "cnn"}
    assert designs.load_design("Ada", "my net") == mlp  # exact round trip of the frozen spec

    wider = mlp.with_stage(0, width=32)
    designs.save_design("Ada", "my net", wider, by=SYSTEM)  # same name: overwrite, no 2nd copy
    listed = designs.list_designs("Ada")
    assert [d.name for d in listed] == ["my net", "cnn"]  # most recently saved first
    assert listed[0].created_at <= listed[0].updated_at
    assert designs.load_design("Ada", "my net").stages[0].width == 32

    assert designs.delete_design("Ada", "my net", by=SYSTEM)
    assert not designs.delete_design("Ada", "my net", by=SYSTEM)
    assert [d.name for d in designs.list_designs("Ada")] == ["cnn"]
    with pytest.raises(PlaygroundError, match="no saved design called 'my net'"):
        designs.load_design("Ada", "my net")


def test_owners_are_isolated_and_normalised(designs: DesignStore) -> None:
    designs.save_design("Ada", "net", get_preset("mlp_points"), by=SYSTEM)
    designs.save_design("Bob", "net", get_preset("small_cnn"), by=SYSTEM)
    assert designs.load_design("Ada", "net").name == "mlp_points"
    assert designs.load_design("Bob", "net").name == "small_cnn"
    assert [d.name for d in designs.list_designs("Carol")] == []
    # whitespace and case do not make a new person
    assert designs.load_design("  ada ", "net").name == "mlp_points"
    designs.save_design("BOB", "  net  ", get_preset("lenet5"), by=SYSTEM)
    assert designs.load_design("bob", "net").name == "lenet5"
    assert len(designs.list_designs("Bob")) == 1


@pytest.mark.parametrize("owner", ["", "   ", "\t\n", None])
def test_empty_owner_is_refused(designs: DesignStore, owner) -> None:
    with pytest.raises(PlaygroundError, match="enter your name"):
        designs.save_design(owner, "net", get_preset("mlp_points"), by=SYSTEM)
    with pytest.raises(PlaygroundError, match="enter your name"):
        designs.list_designs(owner)


def test_long_names_and_empty_design_names_are_refused(designs: DesignStore) -> None:
    with pytest.raises(PlaygroundError, match="use at most 64"):
        designs.save_design("x" * 65, "net", get_preset("mlp_points"), by=SYSTEM)
    with pytest.raises(PlaygroundError, match=f"use at most {MAX_NAME_CHARS}"):
        designs.save_design("Ada", "n" * (MAX_NAME_CHARS + 1), get_preset("mlp_points"), by=SYSTEM)
    with pytest.raises(PlaygroundError, match="give the design a name"):
        designs.save_design("Ada", "  ", get_preset("mlp_points"), by=SYSTEM)


def test_dict_specs_are_validated(designs: DesignStore) -> None:
    designs.save_design("Ada", "from dict", get_preset("mlp_points").to_dict(), by=SYSTEM)
    assert designs.load_design("Ada", "from dict") == get_preset("mlp_points")
    with pytest.raises(SpecError):
        designs.save_design("Ada", "broken", {"stages": [{"block": "nonsense"}]}, by=SYSTEM)


def test_module_functions_use_the_run_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PLAYGROUND_RUN_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("PLAYGROUND_DB_URL", raising=False)
    save_design("Ada", "net", get_preset("mlp_points"), by=SYSTEM)
    assert (tmp_path / "runs" / "playground.sqlite").exists()
    assert [d.name for d in list_designs("Ada")] == ["net"]
    assert load_design("Ada", "net").name == "mlp_points"
    assert delete_design("Ada", "net", by=SYSTEM)
    other = tmp_path / "elsewhere.sqlite"
    save_design("Ada", "net", get_preset("mlp_points"), path=other, by=SYSTEM)
    assert [d.name for d in list_designs("Ada", path=other)] == ["net"]


def test_module_functions_use_the_db_url_and_share_it_with_runs(postgres_url, tmp_path,
                                                                 monkeypatch) -> None:
    from playground.runs import RunStore

    monkeypatch.setenv("PLAYGROUND_RUN_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("PLAYGROUND_DB_URL", postgres_url)
    save_design("Ada", "net", get_preset("mlp_points"), by=SYSTEM)
    assert not (tmp_path / "runs" / "playground.sqlite").exists()  # nothing on disk
    # the same database as the run store's: another handle on the URL sees the design
    assert [d.name for d in DesignStore(postgres_url).list_designs("ADA")] == ["net"]
    assert RunStore().url == DesignStore().url == postgres_url
    assert load_design("ada", "NET").name == "mlp_points"
    assert delete_design("Ada", "net", by=SYSTEM)


def test_the_per_owner_limit_holds_when_saves_arrive_at_the_same_instant(
        designs: DesignStore, monkeypatch) -> None:
    """Eight new names saved at once by one owner who has room for one more: exactly one is
    stored, in each of five rounds (five owners). On PostgreSQL each transaction counts under
    read committed, so without the owner's advisory lock two or more of them counted the same
    total and were all stored (in about two rounds of three, tried)."""
    import threading

    import playground.designs as designs_module

    monkeypatch.setattr(designs_module, "MAX_DESIGNS_PER_OWNER", 5)
    spec = get_preset("mlp_points")
    for owner in ("Ada", "Bob", "Cy", "Di", "Ed"):
        for i in range(4):
            designs.save_design(owner, f"old {i}", spec, by=SYSTEM)
        barrier = threading.Barrier(8)
        outcomes: list[str] = []

        def save(i: int, owner: str = owner, barrier: threading.Barrier = barrier,
                 outcomes: list[str] = outcomes) -> None:
            barrier.wait()
            try:
                designs.save_design(owner, f"new {i}", spec, by=SYSTEM)
                outcomes.append("saved")
            except PlaygroundError as err:
                outcomes.append(str(err))

        threads = [threading.Thread(target=save, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert outcomes.count("saved") == 1, (owner, outcomes)
        assert all("the limit is 5" in o for o in outcomes if o != "saved"), outcomes
        assert len(designs.list_designs(owner)) == 5
    # overwriting an existing name is not a new design; another owner has their own room
    designs.save_design("Ada", "old 0", spec, by=SYSTEM)
    designs.save_design("Fay", "hers", spec, by=SYSTEM)
    assert len(designs.list_designs("Ada")) == 5 and len(designs.list_designs("Fay")) == 1
