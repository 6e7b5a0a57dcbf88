"""The live view of one run: status, progress with ETA, summary and charts from the store.

A fragment re-reads the store once a second while the run is running, and more slowly while
it waits in line behind other runs (``st.fragment(run_every=...)``: every 2, 5 or 10 s as
its estimated wait is short or long, :func:`playground.runners.fair.poll_pace_s`; a run that
is next and due, or already handed to a worker, keeps the one-second pace so its first point
shows at once), and stops polling when it ends. A view whose run has come close enough for
a quicker pace reruns the page once to take it. A queued run draws only its header (status,
place in the queue, Stop): with 30 students and one worker, 29 views wait, and their polls must not
take the core the training needs. The pass that sees a queued run start (or end straight
from the queue) draws everything, and a slow-paced view then reruns the page once to set the
running pace. New records are fetched with the store's row cursor and appended to a
per-session cache, so each poll reads only what is new; a reload or a second tab rebuilds
everything from the store.

Each poll reads the metrics first and the status second, and once more the metrics if the run
has ended: a worker stores its last records before its final status, so the pass that first
sees the end also draws the final numbers, with "Stop training" turned into a disabled
"Ended" button of the same key (see ``_header``). The header's elements vary with the status
(a message, a caption), so they sit in a container of their own: the charts below keep their
place in the page and are updated in place, never redrawn from scratch. The run's owner and
the teacher get "Stop training"; the store refuses anyone else the run altogether.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from playground.access import Actor
from playground.errors import PlaygroundError
from playground.format import fmt_duration, fmt_int, fmt_wall
from playground.runners.fair import RUNNING_POLL_S, describe_position, poll_pace_s
from playground.runs import ACTIVE_STATUSES, Run
from ui.charts import PALETTE
from ui.jobs import get_runner, get_store, started_runner
from ui.results_view import results_tab
from ui.run_charts import (
    accuracy_chart,
    activation_stats_chart,
    grad_norm_chart,
    layer_heatmap,
    layer_lines_chart,
    loss_chart,
    lr_chart,
)
from ui.text import md_escape

STATUS_ICON = {
    "queued": ":material/schedule:", "running": ":material/play_circle:",
    "finished": ":material/check_circle:", "early_stopped": ":material/check_circle:",
    "stopped": ":material/stop_circle:", "diverged": ":material/warning:",
    "failed": ":material/error:", "interrupted": ":material/pause_circle:",
}


def _metrics(run_id: int) -> dict[str, Any]:
    """This session's cache of a run's series, topped up from the store's row cursor."""
    cache = st.session_state.run_cache.setdefault(
        run_id, {"cursor": 0, "series": {}, "labels": None, "act_labels": None})
    store = get_store()
    new, cursor = store.poll_metrics(run_id, cache["cursor"])
    for name, s in new.items():
        if name in {"layers", "activations"}:
            continue
        into = cache["series"].setdefault(name, {"steps": [], "values": []})
        into["steps"].extend(s["steps"])
        into["values"].extend(s["values"])
    cache["cursor"] = cursor
    if cache["labels"] is None and ("layers" in new or cursor):
        cache["labels"] = store.layer_labels(run_id, "layers")
        cache["act_labels"] = store.layer_labels(run_id, "activations")
    return cache


def _progress(run: Run, series: dict[str, Any]) -> tuple[int, int, float | None]:
    total = int(run.summary.get("total_steps") or run.settings.get("steps") or 1)
    done = series["loss"]["steps"][-1] if series.get("loss", {}).get("steps") else 0
    elapsed = series["elapsed_s"]["values"][-1] if series.get("elapsed_s", {}).get("values") \
        else None
    eta = None
    if elapsed is not None and done > 0 and run.status == "running":
        eta = elapsed / done * max(total - done, 0)
    return done, total, eta


def _header(run: Run, series: dict[str, Any], actor: Actor,
            where: tuple[int, float | None] | None = None) -> None:
    """``where``: the queued run's ``(position, eta_s)`` in this server's runner."""
    icon = STATUS_ICON.get(run.status, "")
    done, total, eta = _progress(run, series)
    left, right = st.columns([5, 2], vertical_alignment="center")  # room for "Stop training"
    left.markdown(f"#### {icon} Run {run.id}: {md_escape(run.title)}")
    mine = actor.may_act_on(run.owner)
    # The owner's slot always holds a button with the same key: the browser shows a widget that
    # a pass no longer draws until that pass ends (another element in its place does not
    # replace it), so the pass that sees the end turns the button into a disabled "Ended"
    # instead, in place, in the same update as the final numbers.
    with right:
        if not mine:
            st.caption(f"{md_escape(run.owner)}'s run: read-only")
        elif run.status not in ACTIVE_STATUSES:
            ended = time.localtime(run.finished_at or run.created_at)
            st.button("Ended", key=f"stop_{run.id}", disabled=True, type="tertiary",
                      icon=":material/check:",
                      help=f"The run ended on {time.strftime('%d %b %Y at %H:%M', ended)}.")
        elif st.button("Stop training", icon=":material/stop:", key=f"stop_{run.id}"):
            try:
                get_runner().cancel(run.id, by=actor)
                st.toast(f"Stopping run {run.id}...")
            except PlaygroundError as err:
                st.error(md_escape(err))
    text = f"{run.status.replace('_', ' ')}: step {fmt_int(done)} of {fmt_int(total)}"
    if eta is not None:  # a fast run's last steps: "about 0 s left" would read as a fault
        text += f", about {fmt_duration(eta)} left" if eta >= 1 else ", almost done"
    st.progress(min(done / max(total, 1), 1.0), text=text)
    if run.status == "queued" and where is not None:
        st.caption(describe_position(*where))
    # messages may quote a worker's exception, and with it the design's names and values
    message = md_escape(run.message)
    if run.status == "diverged":
        st.error(message, icon=":material/warning:")
    elif run.status in {"failed", "interrupted"}:
        st.error(message or f"The run {run.status}.")
    elif run.status in {"stopped", "early_stopped"} and message:
        st.info(message)
    elif run.status == "finished" and message:
        st.success(message)
    if run.status not in ACTIVE_STATUSES and (where := _where_and_speed(run.summary,
                                                                        _machine(run))):
        st.caption(md_escape(where))
    elif run.status == "running" and run.runner:
        st.caption(md_escape(f"Training on {run.device or 'its device'}{_machine(run)}"))


def _position(run_id: int) -> tuple[int, float | None] | None:
    """``(position, eta_s)`` of a run in this server's runner, ``None`` if it holds none."""
    runner = started_runner()
    return runner.queue_position(run_id) if runner is not None else None


def _pace(where: tuple[int, float | None] | None) -> float:
    """Seconds between polls of a queued run's view (see the module docstring); the running
    pace for a run this server's runner does not hold (another server's, or starting)."""
    return RUNNING_POLL_S if where is None else poll_pace_s(*where)


def _machine(run: Run) -> str:
    """' of gpu-2 (Ray)': the machine and runner backend a run used, if recorded."""
    if not run.runner:
        return ""
    backend = {"ray": "Ray", "local": "local workers"}.get(run.runner, run.runner)
    return f" of {run.worker_host} ({backend})" if run.worker_host else f" ({backend})"


def _where_and_speed(summary: dict[str, Any], machine: str = "") -> str:
    """'Trained on cuda:0 of gpu-2 (Ray) with bf16 mixed precision · 41,000 samples/s · 12 s
    in all'."""
    device = summary.get("device")
    if not device:
        return ""
    amp = summary.get("amp")
    parts = [f"Trained on {device}{machine}" + (f" with {amp} mixed precision"
                                                if amp and amp != "off" else "")]
    if summary.get("samples_per_s"):
        parts.append(f"{fmt_int(round(summary['samples_per_s']))} samples/s")
    if summary.get("wall_s") is not None:
        parts.append(f"{fmt_wall(summary['wall_s'])} in all")
    return " · ".join(parts)


def _summary(series: dict[str, Any]) -> None:
    def last(name: str) -> float | None:
        values = series.get(name, {}).get("values")
        return values[-1] if values else None

    c1, c2, c3, c4 = st.columns(4)
    va, vl, loss, gn = last("val_acc"), last("val_loss"), last("loss"), last("grad_norm")
    c1.metric("Validation accuracy", "n/a" if va is None else f"{va:.1%}")
    c2.metric("Validation loss", "n/a" if vl is None else f"{vl:.3f}")
    c3.metric("Training loss", "n/a" if loss is None else f"{loss:.3f}")
    c4.metric("Gradient norm", "n/a" if gn is None else f"{gn:.3g}")


def _charts(cache: dict[str, Any], run: Run, actor: Actor) -> None:
    series = cache["series"]
    labels = cache["labels"] or []
    act_labels = cache["act_labels"] or []
    clipping = bool(run.settings.get("clip_norm"))
    item = [("", PALETTE[0], series)]
    tabs = st.tabs(["Loss & accuracy", "Gradients", "Activations", "Learning rate", "Results"],
                   key="train_tab", on_change="rerun")
    if tabs[0].open is not False:
        with tabs[0]:
            c1, c2 = st.columns(2)
            c1.plotly_chart(loss_chart(item), width="stretch", key="ch_loss")
            c2.plotly_chart(accuracy_chart(item), width="stretch", key="ch_acc")
            st.caption("Faint lines: every batch; solid: moving average; dashed: validation.")
    if tabs[1].open:
        with tabs[1]:
            c1, c2 = st.columns(2)
            c1.plotly_chart(grad_norm_chart(item, [clipping]), width="stretch", key="ch_gn")
            c2.plotly_chart(layer_lines_chart(series, labels), width="stretch", key="ch_gl")
            st.plotly_chart(layer_heatmap(series, labels), width="stretch", key="ch_hm")
            st.caption("Per-layer lines: purple = first layers, yellow = last (hover for "
                       "names). Heatmap: each row is a layer, first layer at the top. A dark "
                       "band over the first layers means their gradients vanish; a bright band "
                       "spreading from the output means they explode.")
    if tabs[2].open:
        with tabs[2]:
            c1, c2 = st.columns(2)
            c1.plotly_chart(activation_stats_chart(series, act_labels), width="stretch",
                            key="ch_act")
            c2.plotly_chart(layer_lines_chart(series, labels, "update_ratio_layer",
                                              "Update / weight ratio per layer",
                                              "||step|| / ||weight|| (log)"),
                            width="stretch", key="ch_upd")
            st.caption("Dead ReLU units output zero for every example; saturated sigmoid/tanh "
                       "units sit on a flat end where the slope is almost zero. A healthy "
                       "update/weight ratio is around 1e-3 (CS231n).")
    if tabs[3].open:
        with tabs[3]:
            st.plotly_chart(lr_chart(item), width="stretch", key="ch_lr")
    if tabs[4].open:
        with tabs[4]:
            results_tab(run, actor)


def run_view(run_id: int, actor: Actor) -> None:
    """Draw one run for ``actor`` (its owner or the teacher: the store refuses anyone else);
    polls once a second while it is active."""
    try:
        run = get_store().get_run(run_id, by=actor)
    except PlaygroundError as err:
        st.warning(md_escape(err))
        return
    active = run.status in ACTIVE_STATUSES
    every = (_pace(_position(run_id)) if run.status == "queued" else RUNNING_POLL_S) \
        if active else None
    slow = every is not None and every > RUNNING_POLL_S

    @st.fragment(run_every=every)
    def live() -> None:
        store = get_store()
        cache = _metrics(run_id)
        current = store.get_run(run_id, by=actor)  # after the metrics: see the docstring
        ended = current.status not in ACTIVE_STATUSES
        if active and ended:
            cache = _metrics(run_id)  # the records stored just before the final status
        # one queue lookup per poll, for the place in line and the pace
        where = _position(run_id) if current.status == "queued" else None
        with st.container():
            _header(current, cache["series"], actor, where)
        if current.status == "queued" and not cache["series"]:
            st.caption("The charts appear here when the run starts.")
        else:
            _summary(cache["series"])
            _charts(cache, current, actor)
        notes = current.summary.get("notes") or []
        for note in notes:
            st.caption(f"Note: {md_escape(note)}")
        if active and ended:
            st.rerun()  # the run ended: redraw the page once (run list labels), without the timer
        elif slow and (current.status != "queued" or _pace(where) < every):
            st.rerun()  # it started, or came closer: poll at the quicker pace from now on

    live()
