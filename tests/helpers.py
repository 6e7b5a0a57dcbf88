"""Helpers shared by the AppTest files."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from streamlit.testing.v1 import AppTest


def wait_until(at: AppTest, done: Callable[[], bool], timeout: float = 300,
               what: str = "the condition") -> None:
    """Rerun the app about twice a second (as the page's timer would) until ``done()``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        at.run()
        assert not at.exception, at.exception
        if done():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")  # CommonMark: a backslash before ASCII punctuation


def shown(markdown: str) -> str:
    """The text a reader sees for escaped markdown: backslash escapes resolved (CommonMark,
    section "Backslash escapes") and invisible word joiners dropped."""
    return _ESCAPED.sub(r"\1", markdown).replace("\u2060", "")


_KEYS: dict[tuple[str, str], str] = {}


def key_for(name: str, location: object = None) -> str:
    """The key of ``name`` in the store at ``location`` (default: the settings' store), as a
    student's bookmarked address carries it: claimed on first use, else the key this process
    got before (a name the app claimed by itself gets a new key from the system)."""
    from playground.access import SYSTEM
    from playground.identity import IdentityStore, NameTaken
    from playground.store.schema import name_key

    ids = IdentityStore(location)
    slot = (ids.url, name_key(name))
    if slot not in _KEYS:
        try:
            _KEYS[slot] = ids.claim(name)
        except NameTaken:
            _KEYS[slot] = ids.reset(name, by=SYSTEM)
    return _KEYS[slot]


def with_key(query: dict[str, str]) -> dict[str, str]:
    """``query`` with the ``key`` of its ``user`` added, as the student's own link has it."""
    from ui.state import clean_user

    name = clean_user(query.get("user", ""))
    if not name or "key" in query:
        return query
    return {**query, "key": key_for(name)}
