"""Server-side rerun time of the Build page after a change, VGG-19 at 3x224x224 loaded.

Runs the real page script through Streamlit's AppTest (no browser: this is the Python time a
widget change costs on the server). Three cases, each a median over several changes:

- "new design": a change to a design not seen before (cache miss: plan, meta build, analysis);
- "revisit": a change back to a design already analysed (cache hit);
- "no-op rerun": a rerun with nothing changed (the page's own overhead; the baseline).

Goal: at most 300 ms median for a change. Usage: ``python benchmarks/ui.py [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    import os

    os.environ.setdefault("PLAYGROUND_HOME", tempfile.mkdtemp())
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.selectbox(key="design_pick").select("preset:vgg19").run()  # one pick opens it
    assert not at.exception, at.exception
    at.session_state.open_stages = {4}  # open stage 5's editor, as a click would
    at.run()

    def key() -> str:
        return f"g{at.session_state.gen}_s_4_width"

    new, revisit, noop = [], [], []
    widths = [512 + 8 * (i + 1) for i in range(args.repeats)]
    for w in widths:  # never seen before: cache miss
        t = time.perf_counter()
        at.number_input(key=key()).set_value(w).run()
        new.append(time.perf_counter() - t)
    for w in widths:  # seen: cache hit
        t = time.perf_counter()
        at.number_input(key=key()).set_value(w).run()
        revisit.append(time.perf_counter() - t)
    for _ in widths:
        t = time.perf_counter()
        at.run()
        noop.append(time.perf_counter() - t)
    assert not at.exception, at.exception

    base = statistics.median(noop)
    rows = [("no-op rerun (baseline)", noop), ("change -> new design", new),
            ("change -> revisited design", revisit)]
    print("Build page, VGG-19 @ 3x224x224, server-side rerun (AppTest), "
          f"{args.repeats} repeats")
    print(f"{'case':30s} {'median ms':>10s} {'max ms':>8s} {'x baseline':>11s} {'goal':>8s}")
    for name, times in rows:
        med = statistics.median(times)
        goal = "<=300" if "change" in name else ""
        print(f"{name:30s} {med * 1e3:10.1f} {max(times) * 1e3:8.1f} {med / base:11.2f} "
              f"{goal:>8s}")


if __name__ == "__main__":
    main()
