"""Saved designs: each classroom name keeps its own named network specs.

Designs live in the run store's SQLite file (a ``designs`` table next to ``runs``), so one file
holds everything a class produced. A design is stored as the spec's JSON and read back through
:func:`playground.spec.spec_from_dict`, so a design saved by an older version that no longer
validates comes back as a plain-language :class:`~playground.errors.SpecError`, never as a
half-built object.

Owners are free text ("Ada L.", "table 3"): whitespace is collapsed, empty or over-long names are
refused, and the database compares them case-insensitively (see
:func:`playground.runs.normalise_owner`). Design names follow the same rules.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playground.errors import PlaygroundError
from playground.runs import SQLiteStore, clean_name, default_db_path, normalise_owner
from playground.spec import NetworkSpec, spec_from_dict

MAX_NAME_CHARS = 80
MAX_DESIGNS_PER_OWNER = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS designs (
    owner TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE,
    spec_json TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (owner, name)
);
"""


@dataclass(frozen=True)
class SavedDesign:
    """One saved design without its spec (for lists); times are Unix seconds."""

    owner: str
    name: str
    description: str
    created_at: float
    updated_at: float


def normalise_design_name(name: str) -> str:
    """Collapse whitespace; refuse empty or over-long names with a clear message."""
    return clean_name(name, MAX_NAME_CHARS, "that design name",
                      "give the design a name before saving it")


class DesignStore(SQLiteStore):
    """Named specs per owner in one SQLite file (defaults to the run store's file)."""

    SCHEMA = _SCHEMA

    def save_design(self, owner: str, name: str, spec: NetworkSpec | dict[str, Any]) -> SavedDesign:
        """Save ``spec`` as ``name`` for ``owner``, replacing a design of the same name."""
        owner = normalise_owner(owner)
        name = normalise_design_name(name)
        if not isinstance(spec, NetworkSpec):
            spec = spec_from_dict(spec)
        now = time.time()
        with self._db.write() as con:
            exists = con.execute(
                "SELECT created_at FROM designs WHERE owner = ? AND name = ?", (owner, name)
            ).fetchone()
            if exists is None:
                count = con.execute(
                    "SELECT COUNT(*) FROM designs WHERE owner = ?", (owner,)
                ).fetchone()[0]
                if count >= MAX_DESIGNS_PER_OWNER:
                    raise PlaygroundError(
                        f"{owner} already has {count} saved designs (the limit is "
                        f"{MAX_DESIGNS_PER_OWNER}); delete some or overwrite one"
                    )
            created = now if exists is None else exists[0]
            con.execute(
                "INSERT OR REPLACE INTO designs (owner, name, spec_json, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (owner, name, spec.to_json(indent=None), created, now),
            )
        return SavedDesign(owner, name, spec.description, created, now)

    def list_designs(self, owner: str) -> list[SavedDesign]:
        """``owner``'s designs, most recently saved first."""
        rows = self._read(
            "SELECT owner, name, spec_json, created_at, updated_at FROM designs "
            "WHERE owner = ? ORDER BY updated_at DESC, name",
            (normalise_owner(owner),),
        )
        out = []
        for own, name, spec_json, created, updated in rows:
            try:
                description = str(json.loads(spec_json).get("description", ""))
            except (ValueError, AttributeError):
                description = ""
            out.append(SavedDesign(own, name, description, created, updated))
        return out

    def load_design(self, owner: str, name: str) -> NetworkSpec:
        """The spec saved as ``name``; :class:`PlaygroundError` if there is none."""
        owner = normalise_owner(owner)
        name = normalise_design_name(name)
        rows = self._read(
            "SELECT spec_json FROM designs WHERE owner = ? AND name = ?", (owner, name)
        )
        if not rows:
            raise PlaygroundError(f"{owner} has no saved design called {name!r}")
        try:
            data = json.loads(rows[0][0])
        except ValueError:
            raise PlaygroundError(f"the saved design {name!r} is damaged; save it again") from None
        return spec_from_dict(data)

    def delete_design(self, owner: str, name: str) -> bool:
        """Delete a design; returns whether one was deleted."""
        owner = normalise_owner(owner)
        name = normalise_design_name(name)
        with self._db.write() as con:
            cur = con.execute("DELETE FROM designs WHERE owner = ? AND name = ?", (owner, name))
            return cur.rowcount == 1


# -- module-level shortcuts (the default store under PLAYGROUND_RUN_DIR, or ``path=``) ---------
_STORES: dict[Path, DesignStore] = {}
_STORES_LOCK = threading.Lock()


def open_designs(path: str | os.PathLike[str] | None = None) -> DesignStore:
    """A :class:`DesignStore` per file, created once (the schema check is a write)."""
    key = (Path(path) if path is not None else default_db_path()).resolve()
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = DesignStore(key)
        return store


def save_design(owner: str, name: str, spec: NetworkSpec | dict[str, Any], *,
                path: str | os.PathLike[str] | None = None) -> SavedDesign:
    """Save ``spec`` as ``name`` for ``owner`` (overwrites a design of the same name)."""
    return open_designs(path).save_design(owner, name, spec)


def list_designs(owner: str, *, path: str | os.PathLike[str] | None = None) -> list[SavedDesign]:
    """``owner``'s saved designs, most recently saved first."""
    return open_designs(path).list_designs(owner)


def load_design(owner: str, name: str, *,
                path: str | os.PathLike[str] | None = None) -> NetworkSpec:
    """The spec ``owner`` saved as ``name``."""
    return open_designs(path).load_design(owner, name)


def delete_design(owner: str, name: str, *, path: str | os.PathLike[str] | None = None) -> bool:
    """Delete ``owner``'s design ``name``; returns whether there was one."""
    return open_designs(path).delete_design(owner, name)
