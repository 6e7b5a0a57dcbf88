"""The project's own error types.

Every error a user can cause (an impossible architecture, an unreadable config file, an unknown
name) is raised as a :class:`PlaygroundError` subclass whose message is plain language and is
safe to show as-is in the UI and the CLI. Anything else escaping the core is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class PlaygroundError(Exception):
    """Base class: ``str(err)`` is a complete, user-facing sentence."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec.

    ``where`` is human text ("stage 5, layer 1 (max-pool 2x2)"), ``message`` says what is wrong
    and ``hint`` what to change. ``path`` locates the field in the spec (``("stages", 4, "pool")``)
    and ``stage`` is the 0-based stage index when the problem belongs to one stage, so a UI can
    draw the message next to it.
    """

    where: str
    message: str
    hint: str = ""
    path: tuple[str | int, ...] = field(default_factory=tuple)
    stage: int | None = None

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}"
        if self.hint:
            text += f"; {self.hint}"
        return text


class SpecError(PlaygroundError):
    """A spec that cannot be built; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        if len(self.problems) == 1:
            text = str(self.problems[0])
        else:
            text = f"{len(self.problems)} problems: " + " | ".join(str(p) for p in self.problems)
        super().__init__(text)


class ConfigError(PlaygroundError):
    """A config file or share link that cannot be read (bad JSON/YAML, too large, tampered)."""


class UnknownNameError(PlaygroundError):
    """A registry lookup for a name that is not registered."""
