"""The classroom load driver (benchmarks/classroom.py) against a real `streamlit run app.py`.

Two students, three stage edits each, no training: every rerun the driver sends over the
websocket must come back with ``script_finished`` and draw no exception, and the JSON report
has the keys the issue asks for. No timing is asserted (speed goes to benchmarks/).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import classroom  # noqa: E402

pytestmark = pytest.mark.slow

KEYS = {"students", "rerun_p50_ms", "rerun_p95_ms", "runs_total", "runs_finished",
        "first_point_p50_s", "first_point_p95_s", "wall_s"}


def test_two_students_rerun_build_without_errors(capsys: pytest.CaptureFixture[str]) -> None:
    summary = classroom.main(["--students", "2", "--actions", "3", "--no-train", "--json",
                              "--timeout", "240"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == summary
    assert summary.keys() >= KEYS
    assert summary["students"] == 2
    # each student: open Build, open stage 1's editor, three edits
    assert summary["reruns"] == 2 * (2 + 3)
    assert summary["reruns_unfinished"] == 0
    assert summary["exceptions"] == []
    assert summary["errors"] == []
    assert summary["server_log_errors"] == []
    assert summary["runs_total"] == 0 and summary["runs_finished"] == 0
    assert summary["rerun_p50_ms"] is not None and summary["rerun_p95_ms"] is not None
    # Build's editor is a fragment: opening stage 1 and the edits are sent as fragment reruns,
    # and most run the fragment alone (an edit that makes the design edited, or unedited
    # again, reruns the whole page so the picker shows it)
    assert summary["reruns_fragment"] == 2 * (1 + 3)
    assert summary["reruns_fragment_only"] >= 2


def test_widget_keys_and_progress_are_read_from_the_protocol() -> None:
    """The parts of the driver that read ForwardMsgs: widget ids by key, progress texts."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    msg = ForwardMsg()
    msg.delta.new_element.number_input.id = "$$ID-0123abcd-g2_s_0_width"
    msg.delta.new_element.number_input.data_type = 0  # INT
    msg.delta.fragment_id = "frag-1"
    found: dict = {}
    fragments: dict = {}
    classroom._widget_ids(msg, found, fragments)
    assert found["g2_s_0_width"][0] == "$$ID-0123abcd-g2_s_0_width"
    assert fragments["g2_s_0_width"] == "frag-1"
    block = ForwardMsg()
    block.delta.add_block.expandable.id = "$$ID-99ff-g0_exp_0"
    classroom._widget_ids(block, found, fragments)
    assert "g0_exp_0" in found and fragments["g0_exp_0"] == ""
    run = classroom.Rerun("poll", 0.0, progress=["queued: step 0 of 100",
                                                  "running: step 1,200 of 2,000, about 3 s left"])
    assert classroom._status(run) == ("running", 1200)
    assert classroom.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert classroom.percentile([float(i) for i in range(101)], 95) == 95.0
