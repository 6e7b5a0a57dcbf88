"""Helpers shared by the AppTest files."""

from __future__ import annotations

import time
from collections.abc import Callable

from streamlit.testing.v1 import AppTest


def wait_until(at: AppTest, done: Callable[[], bool], timeout: float = 90,
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
