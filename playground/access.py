"""Who may do what: the actor behind every action on a run or a design.

Every action that reads or changes a run or a saved design names its :class:`Actor`, and the
store or runner checks it there (:func:`check_owner`), not only the page that offers the
button: a page that forgot a check still cannot stop a classmate's run.

Roles:

- ``student``: acts on what is theirs (matched like owners everywhere: whitespace collapsed,
  ASCII letters case-folded, :func:`playground.store.schema.name_key`). A student's actor is
  made only after the key of their name was checked (:mod:`playground.identity`) or an OpenID
  login named them.
- ``teacher``: unlocked with ``PLAYGROUND_TEACHER_CODE``; reads and stops every run, resets
  keys, sets the class settings.
- ``system``: the server's own code and the command line (whoever can run the CLI on the
  server can read the database anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from playground.errors import PlaygroundError
from playground.store.schema import name_key

Role = Literal["student", "teacher", "system"]


class AccessDenied(PlaygroundError):
    """An action on something that belongs to someone else, or a wrong key or code."""


@dataclass(frozen=True)
class Actor:
    """Who is acting: a name (``""`` when none) and a role."""

    name: str
    role: Role = "student"

    @property
    def is_staff(self) -> bool:
        """Teachers and the system act on every run and design."""
        return self.role in ("teacher", "system")

    @property
    def label(self) -> str:
        """How the actor is named in a run's record ("stopped by ...")."""
        if self.role == "system":
            return "the server"
        if self.role == "teacher":
            return f"the teacher ({self.name})" if self.name else "the teacher"
        return self.name

    def may_act_on(self, owner: str) -> bool:
        """Whether this actor may read or change what ``owner`` owns."""
        return self.is_staff or (bool(self.name) and name_key(self.name) == name_key(owner))


SYSTEM = Actor("", "system")


def teacher(name: str = "") -> Actor:
    """The teacher's actor (``name``: how the teacher signs, may be empty)."""
    return Actor(name, "teacher")


def check_owner(actor: Actor, owner: str, what: str) -> None:
    """Refuse (:class:`AccessDenied`) unless ``actor`` may act on ``owner``'s ``what``."""
    if not actor.may_act_on(owner):
        raise AccessDenied(f"{what} belongs to someone else: only its owner or the teacher "
                           "can open or change it")


def check_staff(actor: Actor, what: str) -> None:
    """Refuse unless ``actor`` is the teacher (or the system)."""
    if not actor.is_staff:
        raise AccessDenied(f"only the teacher can {what}")
