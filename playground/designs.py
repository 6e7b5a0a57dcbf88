"""Saved designs: each classroom name keeps its own named network specs.

Designs live in the run store's database (a ``designs`` table next to ``runs``, same URL: the
SQLite file or the shared PostgreSQL database), so one place holds everything a class
produced. A design is stored as the spec's JSON and read back through
:func:`playground.spec.spec_from_dict`, so a design saved by an older version that no longer
validates comes back as a plain-language :class:`~playground.errors.SpecError`, never as a
half-built object.

Owners are free text ("Ada L.", "table 3"): whitespace is collapsed, empty or over-long names are
refused, and they are compared case-insensitively through ``owner_key`` (see
:func:`playground.runs.normalise_owner`). Design names follow the same rules (``name_key``);
saving is one ``INSERT ... ON CONFLICT (owner_key, name_key) DO UPDATE``. The per-owner limit
is counted in the saving transaction, and it is exact: SQLite has one writer at a time; on
PostgreSQL (read committed) the transaction first takes an advisory lock on the owner
(``pg_advisory_xact_lock(DESIGN_LOCK_CLASS, hashtext(owner_key))``, released at commit), so two
saves of new names by one owner at the same instant cannot both count the same total.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from playground.access import Actor, check_owner
from playground.errors import PlaygroundError
from playground.runs import StoreBase, clean_name, normalise_owner, upsert
from playground.spec import NetworkSpec, spec_from_dict
from playground.store import default_url, to_url
from playground.store.schema import designs, name_key

MAX_NAME_CHARS = 80
MAX_DESIGNS_PER_OWNER = 200
DESIGN_LOCK_CLASS = 0x6465  # "de": pg_advisory_xact_lock(class, hashtext(owner_key)) per save


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


class DesignStore(StoreBase):
    """Named specs per owner in one database (defaults to the run store's)."""

    def save_design(self, owner: str, name: str, spec: NetworkSpec | dict[str, Any], *,
                    by: Actor) -> SavedDesign:
        """Save ``spec`` as ``name`` for ``owner``, replacing a design of the same name; only
        ``owner`` (or the teacher, the system) may (:class:`~playground.access.AccessDenied`)."""
        owner = normalise_owner(owner)
        check_owner(by, owner, "that design")
        name = normalise_design_name(name)
        if not isinstance(spec, NetworkSpec):
            spec = spec_from_dict(spec)
        okey, nkey = name_key(owner), name_key(name)
        now = time.time()
        with self._db.write() as con:
            if con.dialect.name == "postgresql":  # one save per owner at a time (see above)
                con.execute(sa.select(sa.func.pg_advisory_xact_lock(
                    DESIGN_LOCK_CLASS, sa.func.hashtext(okey))))
            created = con.execute(
                sa.select(designs.c.created_at)
                .where(designs.c.owner_key == okey, designs.c.name_key == nkey)
            ).scalar()
            if created is None:
                count = con.execute(
                    sa.select(sa.func.count()).select_from(designs)
                    .where(designs.c.owner_key == okey)
                ).scalar_one()
                if count >= MAX_DESIGNS_PER_OWNER:
                    raise PlaygroundError(
                        f"{owner} already has {count} saved designs (the limit is "
                        f"{MAX_DESIGNS_PER_OWNER}); delete some or overwrite one"
                    )
                created = now
            upsert(con, designs, [{
                "owner_key": okey, "name_key": nkey, "owner": owner, "name": name,
                "spec_json": spec.to_json(indent=None), "created_at": created,
                "updated_at": now,
            }], keys=("owner_key", "name_key"))
        return SavedDesign(owner, name, spec.description, created, now)

    def list_designs(self, owner: str, by: Actor | None = None) -> list[SavedDesign]:
        """``owner``'s designs, most recently saved first (with ``by``: only if that actor may
        read them)."""
        if by is not None:
            check_owner(by, owner, "that list of designs")
        rows = self._read(
            sa.select(designs.c.owner, designs.c.name, designs.c.spec_json,
                      designs.c.created_at, designs.c.updated_at)
            .where(designs.c.owner_key == name_key(normalise_owner(owner)))
            .order_by(designs.c.updated_at.desc(), designs.c.name_key)
        )
        out = []
        for own, name, spec_json, created, updated in rows:
            try:
                description = str(json.loads(spec_json).get("description", ""))
            except (ValueError, AttributeError):
                description = ""
            out.append(SavedDesign(own, name, description, created, updated))
        return out

    def load_design(self, owner: str, name: str, by: Actor | None = None) -> NetworkSpec:
        """The spec saved as ``name``; :class:`PlaygroundError` if there is none (with ``by``:
        only if that actor may read it)."""
        owner = normalise_owner(owner)
        if by is not None:
            check_owner(by, owner, "that design")
        name = normalise_design_name(name)
        rows = self._read(
            sa.select(designs.c.spec_json).where(designs.c.owner_key == name_key(owner),
                                                 designs.c.name_key == name_key(name))
        )
        if not rows:
            raise PlaygroundError(f"{owner} has no saved design called {name!r}")
        try:
            data = json.loads(rows[0][0])
        except ValueError:
            raise PlaygroundError(f"the saved design {name!r} is damaged; save it again") from None
        return spec_from_dict(data)

    def delete_design(self, owner: str, name: str, *, by: Actor) -> bool:
        """Delete a design (its owner, the teacher or the system); returns whether one was
        deleted."""
        owner = normalise_owner(owner)
        check_owner(by, owner, "that design")
        name = normalise_design_name(name)
        with self._db.write() as con:
            result = con.execute(
                sa.delete(designs).where(designs.c.owner_key == name_key(owner),
                                         designs.c.name_key == name_key(name))
            )
            return result.rowcount == 1


# -- module-level shortcuts (the settings' database, or ``path=``: a path or a URL) ------------
_STORES: dict[str, DesignStore] = {}
_STORES_LOCK = threading.Lock()


def open_designs(path: str | os.PathLike[str] | None = None) -> DesignStore:
    """A :class:`DesignStore` per database URL, opened once per process."""
    key = default_url() if path is None else to_url(path)
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = DesignStore(key)
        return store


def save_design(owner: str, name: str, spec: NetworkSpec | dict[str, Any], *, by: Actor,
                path: str | os.PathLike[str] | None = None) -> SavedDesign:
    """Save ``spec`` as ``name`` for ``owner`` (overwrites a design of the same name)."""
    return open_designs(path).save_design(owner, name, spec, by=by)


def list_designs(owner: str, *, by: Actor | None = None,
                 path: str | os.PathLike[str] | None = None) -> list[SavedDesign]:
    """``owner``'s saved designs, most recently saved first."""
    return open_designs(path).list_designs(owner, by)


def load_design(owner: str, name: str, *, by: Actor | None = None,
                path: str | os.PathLike[str] | None = None) -> NetworkSpec:
    """The spec ``owner`` saved as ``name``."""
    return open_designs(path).load_design(owner, name, by)


def delete_design(owner: str, name: str, *, by: Actor,
                  path: str | os.PathLike[str] | None = None) -> bool:
    """Delete ``owner``'s design ``name``; returns whether there was one."""
    return open_designs(path).delete_design(owner, name, by=by)
