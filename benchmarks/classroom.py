"""A classroom on one server: N simulated students drive `streamlit run app.py` at once.

Starts a real server (temporary ``PLAYGROUND_HOME``, a free loopback port) and plays every
student from this one process over Streamlit's own websocket protocol, as the browser does:
``BackMsg.rerun_script`` (query string, page, widget states, the hashes of cached messages)
goes out on ``/_stcore/stream``; ``ForwardMsg`` deltas come back until ``script_finished``.
Widget ids are read from the deltas of the runs before (``$$ID-<hash>-<key>``), so a student
"types" into a widget by its key, as the pages name it.

Before the class, one visit to Build and Train warms the server up (its first run imports
torch and torchvision: seconds, once per server). Then each student, one action every 2 s on
average (uniform 1-3 s think times, seeded; Locust's ``between(1, 3)``), all starting within
the same 10 s:

1. opens Build as ``?user=student-NN`` (one rerun);
2. opens the first stage's editor, then changes its width, depth or kernel ``--actions``
   times (one rerun each);
3. unless ``--no-train``: opens Train, sets Steps to 100 (data set ``shapes``, the page's
   default), presses Start and follows the run as the browser does: the run view's fragment
   asks for an ``auto_rerun`` every second, and each one is sent back as a fragment rerun,
   until the run has ended.

Measured: rerun latency (BackMsg sent -> ``script_finished``) of the students' actions and,
apart, of the fragment polls; Start -> first point (the first progress text past step 0);
whether every run ended ``finished``; exceptions drawn on a page; errors in the server log.
Prints a markdown table; ``--json`` prints the numbers as JSON instead.

Usage: ``python benchmarks/classroom.py [--students 30] [--actions 10] [--seed 0]
[--no-train] [--json]``. Goal (issue 12): rerun p95 <= 500 ms for 30 students with trainings
running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for ``tests.app_server``

from tests.app_server import serve_app

ROOT = Path(__file__).resolve().parents[1]

# "running: step 12 of 100, about 3 s left" (ui/train_view.py's progress text)
PROGRESS = re.compile(r"^(?P<status>[a-z ]+): step (?P<done>[\d,]+) of (?P<total>[\d,]+)")
ACTIVE = {"queued", "running"}
ID_PREFIX = "$$ID-"
# Server log lines that mean something went wrong (the script's own exceptions are counted
# from the page: they are drawn as an exception element).
LOG_ERRORS = re.compile(r"Traceback|\bERROR\b|Exception|Error:")


@dataclass
class Rerun:
    """One script run as the browser sees it: from the BackMsg to ``script_finished``."""

    kind: str  # "action" (a user's click or edit) or "poll" (a fragment's auto-rerun)
    sent: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    seconds: float | None = None
    exceptions: list[str] = field(default_factory=list)
    progress: list[str] = field(default_factory=list)
    bytes_in: int = 0
    fragment: bool = False  # sent as a fragment rerun (a widget in a fragment, or a poll)
    whole_page: bool = False  # the app script ran (its st.navigation message came back)


@dataclass
class Result:
    reruns: list[Rerun] = field(default_factory=list)
    first_point_s: float | None = None
    run_status: str | None = None  # the status text the run ended with; None: no run
    started_run: bool = False
    errors: list[str] = field(default_factory=list)


def _widget_ids(msg: Any, into: dict[str, tuple[str, Any]], fragments: dict[str, str]) -> None:
    """Record every keyed widget a delta draws: user key -> (widget id, element proto), and
    user key -> the fragment it is drawn in (a change there reruns only that fragment)."""
    delta = msg.delta
    kind = delta.WhichOneof("type")
    if kind == "new_element":
        el = delta.new_element
        name = el.WhichOneof("type")
        proto = getattr(el, name) if name else None
    elif kind == "add_block":
        block = delta.add_block
        name = block.WhichOneof("type")
        proto = getattr(block, name) if name else None
        if proto is not None and not getattr(proto, "id", ""):
            proto = block  # an expander's id lives on the block itself
    else:
        return
    wid = getattr(proto, "id", "") if proto is not None else ""
    if isinstance(wid, str) and wid.startswith(ID_PREFIX):
        parts = wid.split("-", 2)
        if len(parts) == 3 and parts[2] and not parts[2].startswith("None"):
            into[parts[2]] = (wid, proto)
            fragments[parts[2]] = delta.fragment_id


class Student:
    """One browser tab: a websocket, its widget ids, query string and message cache."""

    def __init__(self, url: str, name: str, rng: random.Random) -> None:
        self.url = url
        self.name = name
        self.rng = rng
        self.query = urlencode({"user": name})
        self.widgets: dict[str, tuple[str, Any]] = {}
        self.widget_fragment: dict[str, str] = {}  # user key -> fragment id ("" for none)
        self.pages: dict[str, str] = {}  # url path -> page script hash
        self.page_hash = ""
        self.cache: dict[str, int] = {}  # cacheable message hash -> run count when last seen
        self.runs_done = 0
        self.pending: Rerun | None = None
        self.fragment: tuple[str, float] | None = None  # (fragment id, interval) to auto-rerun
        self.result = Result()
        self.ws: Any = None

    # -- protocol -------------------------------------------------------------------------------
    async def connect(self) -> None:
        from websockets.asyncio.client import connect

        self.ws = await connect(f"ws://{self.url}/_stcore/stream", subprotocols=["streamlit"],
                                max_size=None, open_timeout=60, ping_interval=None)
        self.reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            with contextlib.suppress(Exception):
                await self.reader

    async def _read(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        early = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_EARLY_FOR_RERUN")
        async for data in self.ws:
            msg = ForwardMsg()
            msg.ParseFromString(data)
            kind = msg.WhichOneof("type")
            run = self.pending
            if run is not None:
                run.bytes_in += len(data)
            if msg.metadata.cacheable and msg.hash:
                self.cache[msg.hash] = self.runs_done
            if kind == "ref_hash":
                self.cache[msg.ref_hash] = self.runs_done
            elif kind == "delta":
                _widget_ids(msg, self.widgets, self.widget_fragment)
                el = msg.delta.new_element if msg.delta.HasField("new_element") else None
                if el is not None and run is not None:
                    if el.HasField("exception"):
                        run.exceptions.append(f"{el.exception.type}: {el.exception.message}")
                    elif el.HasField("progress"):
                        run.progress.append(el.progress.text)
            elif kind == "navigation":
                if run is not None:
                    run.whole_page = True
                self.pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
                self.page_hash = msg.navigation.page_script_hash or self.page_hash
            elif kind == "new_session":
                self.page_hash = msg.new_session.page_script_hash or self.page_hash
            elif kind == "page_info_changed":
                self.query = msg.page_info_changed.query_string
            elif kind == "auto_rerun":
                self.fragment = (msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
            elif kind == "stop_auto_rerun":
                self.fragment = None
            elif kind == "script_finished" and msg.script_finished != early:
                self.runs_done += 1
                # The browser forgets cached messages unused for two runs
                # (global.maxCachedMessageAge).
                self.cache = {h: n for h, n in self.cache.items() if self.runs_done - n <= 2}
                if run is not None:
                    run.seconds = time.perf_counter() - run.sent
                    self.pending = None
                    run.done.set()

    async def rerun(self, kind: str = "action", widgets: dict[str, Any] | None = None,
                    page: str | None = None, fragment: str = "", timeout_s: float = 120.0,
                    ) -> Rerun:
        """Send one ``rerun_script`` and wait for its ``script_finished``.

        ``widgets``: user key -> new value (True for a button press); ``page``: a url path
        to open (``train``), or None for the page that is open.
        """
        from streamlit.proto.BackMsg_pb2 import BackMsg

        back = BackMsg()
        state = back.rerun_script
        state.query_string = self.query
        if page is not None and page in self.pages:
            state.page_script_hash = self.pages[page]
        elif page is not None:
            state.page_name = page  # the first request: the page is named by its url path
        else:
            state.page_script_hash = self.page_hash
        # a widget drawn in a fragment reruns that fragment only, as the browser asks
        own = {self.widget_fragment.get(key, "") for key in widgets or {}}
        state.fragment_id = fragment or (own.pop() if len(own) == 1 else "")
        state.is_auto_rerun = bool(fragment)
        state.cached_message_hashes.extend(self.cache)
        for key, value in (widgets or {}).items():
            wid, proto = self.widgets[key]
            ws = state.widget_states.widgets.add()
            ws.id = wid
            if value is True and type(proto).__name__ == "Button":
                ws.trigger_value = True
            elif isinstance(value, bool):
                ws.bool_value = value
            elif isinstance(value, str):
                ws.string_value = value
            elif getattr(proto, "data_type", 1) == 0:  # NumberInput.INT
                ws.int_value = int(value)
            else:
                ws.double_value = float(value)
        run = Rerun(kind, time.perf_counter(), fragment=bool(state.fragment_id))
        self.pending = run
        await self.ws.send(back.SerializeToString())
        try:
            await asyncio.wait_for(run.done.wait(), timeout_s)
        except TimeoutError:
            self.result.errors.append(f"{self.name}: a {kind} rerun did not finish in "
                                      f"{timeout_s:.0f} s")
            self.pending = None
        self.result.reruns.append(run)
        if run.exceptions:
            self.result.errors.extend(f"{self.name}: {e}" for e in run.exceptions)
        return run

    def key(self, pattern: str) -> str:
        """The user key of a widget drawn so far that matches ``pattern`` (e.g. the stage
        editor's keys carry the design's generation: ``g3_s_0_width``)."""
        found = [k for k in self.widgets if re.fullmatch(pattern, k)]
        if not found:
            raise LookupError(f"{self.name}: no widget key matches {pattern!r}")
        # the highest generation is the one on the page now
        return max(found, key=lambda k: int(re.match(r"g(\d+)_", k).group(1))
                   if re.match(r"g(\d+)_", k) else 0)

    async def think(self) -> None:
        await asyncio.sleep(self.rng.uniform(1.0, 3.0))


EDITS = (("width", (8, 12, 16, 24, 32, 48)), ("depth", (1, 2, 3)), ("kernel", (3, 5)))


async def student(url: str, index: int, args: argparse.Namespace,
                  deadline: float) -> Result:
    rng = random.Random(args.seed * 1000 + index)
    me = Student(url, f"student-{index:02d}", rng)
    await asyncio.sleep(rng.uniform(0.0, 10.0))  # the class arrives within 10 s
    try:
        await me.connect()
        await me.rerun(page="build")  # opens /build?user=...
        await me.think()
        await me.rerun(widgets={me.key(r"g\d+_exp_0"): True})  # open stage 1's editor
        for _ in range(args.actions):
            await me.think()
            field_name, values = rng.choice(EDITS)
            await me.rerun(widgets={me.key(rf"g\d+_s_0_{field_name}"): rng.choice(values)})
        if not args.no_train:
            await me.think()
            await me.rerun(page="train")
            await me.think()
            await me.rerun(widgets={"tr_steps": 100})
            await me.think()
            clicked = time.perf_counter()
            start = await me.rerun(widgets={"tr_start": True})
            me.result.started_run = True
            await follow(me, start, clicked, deadline)
    except Exception as err:  # a missing widget, a closed websocket: report, never hang
        me.result.errors.append(f"{me.name}: {type(err).__name__}: {err}")
    finally:
        await me.close()
    return me.result


def _status(run: Rerun) -> tuple[str, int] | None:
    """(status, steps done) from the last progress text a rerun drew."""
    for text in reversed(run.progress):
        m = PROGRESS.match(text)
        if m:
            return m["status"], int(m["done"].replace(",", ""))
    return None


async def follow(me: Student, start: Rerun, clicked: float, deadline: float) -> None:
    """Poll the run view's fragment as the browser does until the run has ended."""
    seen = _status(start)
    while True:
        if seen is not None:
            status, done = seen
            if done >= 1 and me.result.first_point_s is None:
                me.result.first_point_s = time.perf_counter() - clicked
            if status not in ACTIVE:
                me.result.run_status = status
                return
        if time.monotonic() > deadline:
            me.result.errors.append(f"{me.name}: the run had not ended by the deadline")
            me.result.run_status = seen[0] if seen else "unknown"
            return
        if me.fragment is None:
            # no timer (e.g. the run ended and the page redrew): one full rerun to look
            await asyncio.sleep(1.0)
            run = await me.rerun(kind="poll")
        else:
            fragment_id, interval = me.fragment
            await asyncio.sleep(interval)
            run = await me.rerun(kind="poll", fragment=fragment_id)
        seen = _status(run) or seen


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation, as numpy's default."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q) - 1))]


def summarise(results: list[Result], students: int, wall_s: float,
              log_errors: list[str]) -> dict[str, Any]:
    actions = [r.seconds * 1e3 for res in results for r in res.reruns
               if r.kind == "action" and r.seconds is not None]
    polls = [r.seconds * 1e3 for res in results for r in res.reruns
             if r.kind == "poll" and r.seconds is not None]
    first = [res.first_point_s for res in results if res.first_point_s is not None]
    unfinished = sum(1 for res in results for r in res.reruns if r.seconds is None)
    exceptions = [e for res in results for r in res.reruns for e in r.exceptions]
    kib = [r.bytes_in / 1024 for res in results for r in res.reruns if r.kind == "action"]

    def rnd(x: float | None, nd: int = 1) -> float | None:
        return None if x is None else round(x, nd)

    done = [r for res in results for r in res.reruns if r.kind == "action" and r.seconds]
    return {
        "students": students,
        "reruns": len(actions),
        # actions sent as fragment reruns, and those that ran only their fragment
        "reruns_fragment": sum(r.fragment for r in done),
        "reruns_fragment_only": sum(r.fragment and not r.whole_page for r in done),
        "rerun_fragment_only_p50_p95_ms": [
            rnd(percentile(part, q)) for q in (50, 95)
            for part in [[r.seconds * 1e3 for r in done if r.fragment and not r.whole_page]]],
        "rerun_whole_page_p50_p95_ms": [
            rnd(percentile(part, q)) for q in (50, 95)
            for part in [[r.seconds * 1e3 for r in done if r.whole_page or not r.fragment]]],
        "rerun_p50_ms": rnd(percentile(actions, 50)),
        "rerun_p95_ms": rnd(percentile(actions, 95)),
        "rerun_max_ms": rnd(max(actions, default=None)),
        "rerun_kib_p50": rnd(percentile(kib, 50)),
        "polls": len(polls),
        "poll_p50_ms": rnd(percentile(polls, 50)),
        "poll_p95_ms": rnd(percentile(polls, 95)),
        "reruns_unfinished": unfinished,
        "exceptions": exceptions,
        "runs_total": sum(res.started_run for res in results),
        "runs_finished": sum(res.run_status == "finished" for res in results),
        "first_points": len(first),
        "first_point_p50_s": rnd(percentile(first, 50), 2),
        "first_point_p95_s": rnd(percentile(first, 95), 2),
        "wall_s": round(wall_s, 1),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "errors": [e for res in results for e in res.errors],
        "server_log_errors": log_errors,
    }


def table(s: dict[str, Any]) -> str:
    def cell(v: Any) -> str:
        return "n/a" if v is None else str(v)

    rows = [
        ("students", s["students"]),
        ("action reruns (p50 / p95 / max ms)",
         f"{cell(s['rerun_p50_ms'])} / {cell(s['rerun_p95_ms'])} / {cell(s['rerun_max_ms'])}"),
        ("data per action rerun (p50 KiB)", s["rerun_kib_p50"]),
        ("action reruns of a fragment (ran it alone)",
         f"{s['reruns_fragment']} ({s['reruns_fragment_only']})"),
        ("p50 / p95 ms of those run alone; of whole-page runs",
         "{} / {}; {} / {}".format(*map(cell, s["rerun_fragment_only_p50_p95_ms"]
                                       + s["rerun_whole_page_p50_p95_ms"]))),
        ("run-view polls (p50 / p95 ms)",
         f"{cell(s['poll_p50_ms'])} / {cell(s['poll_p95_ms'])} ({s['polls']} polls)"),
        ("runs finished / started", f"{s['runs_finished']} / {s['runs_total']}"),
        ("Start -> first point (p50 / p95 s)",
         f"{cell(s['first_point_p50_s'])} / {cell(s['first_point_p95_s'])} "
         f"({s['first_points']} runs had one)"),
        ("reruns unfinished, exceptions", f"{s['reruns_unfinished']}, {len(s['exceptions'])}"),
        ("server log errors", len(s["server_log_errors"])),
        ("web server CPU (s; ms per rerun or poll)",
         f"{cell(s.get('server_cpu_s'))}; {cell(s.get('server_cpu_ms_per_rerun'))}"),
        ("driver CPU (s; the simulated browsers, same machine)", s.get("driver_cpu_s")),
        ("wall (s)", s["wall_s"]),
        ("load average (1, 5, 15 min)", " ".join(str(x) for x in s["load_avg"])),
    ]
    out = ["| measure | value |", "|---|---|"]
    out += [f"| {k} | {cell(v)} |" for k, v in rows]
    return "\n".join(out)


async def warm_up(url: str) -> None:
    """One visit to Build and Train before the class arrives (as a teacher checking the
    page would): the server's first run imports torch and torchvision (seconds), which is
    no rerun cost."""
    me = Student(url, "teacher", random.Random(0))
    await me.connect()
    try:
        await me.rerun(page="build")
        await me.rerun(page="train")
    finally:
        await me.close()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used (``/proc/PID/stat``); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def classroom(url: str, args: argparse.Namespace, pid: int = 0,
                    cpu: dict[str, float | None] | None = None) -> list[Result]:
    await warm_up(url)
    if cpu is not None:
        cpu["start"] = cpu_seconds(pid)
    deadline = time.monotonic() + args.timeout
    tasks = [asyncio.create_task(student(url, i, args, deadline))
             for i in range(args.students)]
    done, pending = await asyncio.wait(tasks, timeout=args.timeout + 60)
    for task in pending:
        task.cancel()
    results = [t.result() for t in done if not t.cancelled() and t.exception() is None]
    for _ in pending:
        results.append(Result(errors=["a student was still busy at the deadline"]))
    if cpu is not None:
        cpu["end"] = cpu_seconds(pid)
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--actions", type=int, default=10, help="stage edits per student")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-train", action="store_true", help="skip the Train part")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds before unfinished students are given up")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the app to serve (e.g. a clean clone, for a baseline)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="classroom-") as tmp:
        home = Path(tmp)
        cpu: dict[str, float | None] = {}
        with serve_app(home, root=args.root) as server:
            t0, driver0 = time.perf_counter(), time.process_time()
            results = asyncio.run(classroom(server.address, args, server.pid, cpu))
            wall, driver = time.perf_counter() - t0, time.process_time() - driver0
        log = server.log_path.read_text(errors="replace")
        log_errors = [line.rstrip() for line in log.splitlines() if LOG_ERRORS.search(line)]
    summary = summarise(results, args.students, wall, log_errors)
    summary["driver_cpu_s"] = round(driver, 1)  # this process: the students' side
    if cpu.get("start") is not None and cpu.get("end") is not None:
        # the web server's own CPU (not its training workers') over the class
        used = cpu["end"] - cpu["start"]
        summary["server_cpu_s"] = round(used, 1)
        reruns = summary["reruns"] + summary["polls"]
        summary["server_cpu_ms_per_rerun"] = round(1e3 * used / reruns, 1) if reruns else None
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(table(summary))
        for line in (summary["errors"] + summary["server_log_errors"])[:20]:
            print("  " + line)
    return summary


if __name__ == "__main__":
    main()
