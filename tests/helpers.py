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
