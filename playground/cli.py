"""``python -m playground``: list presets, analyse a design, export it, train it.

Every user error prints one clear line on stderr and exits with status 2; no tracebacks.

    python -m playground presets
    python -m playground analyse vgg16 --input 3x224x224
    python -m playground analyse resnet50 --format csv > resnet50.csv
    python -m playground analyse tv:resnet50      # torchvision's model, not the preset
    python -m playground analyse my_design.yaml --format json
    python -m playground export resnet20_cifar --format pytorch -o resnet20.py
    python -m playground train small_cnn --dataset shapes --steps 300
    python -m playground train small_cnn --runner ray   # through the configured Ray cluster
    python -m playground runs --owner ada --format json
    python -m playground assignment create --title "Shapes under 50k" --dataset shapes ...
    python -m playground leaderboard shapes-under-50k --format table|json|csv
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground.access import SYSTEM
from playground.errors import PlaygroundError
from playground.format import fmt_si
from playground.settings import get_settings

if TYPE_CHECKING:
    from playground.spec import NetworkSpec

EXIT_USAGE = 2


def _table(headers: list[str], rows: list[list[Any]], right: set[int] | None = None) -> str:
    right = right or set()
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if i in right else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths, strict=True))).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


# -- presets -----------------------------------------------------------------------------------
def cmd_presets(args: argparse.Namespace) -> int:
    from playground.presets import GROUPS, list_presets
    from playground.targets import analyse_spec

    rows = []
    data = []
    for p in list_presets():
        spec = p.spec()
        a = analyse_spec(spec)
        shape = "x".join(str(s) for s in spec.input.shape)
        rows.append([p.name, GROUPS[p.group].split(" (")[0], shape, f"{a.num_params:,}",
                     fmt_si(a.macs), p.title])
        data.append({"name": p.name, "group": p.group, "title": p.title, "input": shape,
                     "num_params": a.num_params, "macs": a.macs, "teaches": p.teaches})
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        print(_table(["name", "group", "input", "params", "MACs", "title"], rows, {3, 4}))
        print("\nMACs as fvcore counts them (one multiply-add = one FLOP); FLOPs = 2 x MACs.")
    return 0


# -- analyse -----------------------------------------------------------------------------------
def _target(args: argparse.Namespace):
    from playground.targets import parse_shape, resolve_target

    shape = parse_shape(args.input) if args.input else None
    return resolve_target(args.target, shape, args.classes)


def _design(args: argparse.Namespace, what: str) -> NetworkSpec:
    """The target's spec; a torchvision model (no spec) is refused for ``what``."""
    target = _target(args)
    if target.spec is None:
        raise PlaygroundError(f"{args.target} is a torchvision model; {what} works on playground "
                              "designs (presets or spec files)")
    return target.spec


def cmd_analyse(args: argparse.Namespace) -> int:
    from playground.analysis import explain_row, training_memory
    from playground.targets import (
        analyse_target,
        final_feature_map,
        final_receptive_field,
        layer_labels,
    )

    target = _target(args)
    a = analyse_target(target)
    labels = layer_labels(target.spec) if target.spec is not None else {}
    mem = training_memory(a, args.batch, args.optimizer)
    if args.format == "json":
        out = a.to_dict()
        out["training_memory"] = mem
        out["target"] = target.label
        out["source"] = target.source
        print(json.dumps(out, indent=2, default=list))
        return 0
    headers = ["#", "layer", "type", "output", "params", "MACs", "RF", "stride", "act bytes"]
    rows = []
    for r in a.rows:
        rows.append([
            r.index, r.name, r.type, "x".join(str(s) for s in r.out_shape), r.num_params, r.macs,
            "n/a" if r.rf is None else "x".join(str(v) for v in r.rf),
            "n/a" if r.jump is None else "x".join(str(v) for v in r.jump),
            r.act_bytes,
        ])
    if args.format == "csv":
        print(f"analysed: {target.source}", file=sys.stderr)  # stdout stays plain CSV
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([*headers, "where"])
        for row, r in zip(rows, a.rows, strict=True):
            entry = labels.get(r.name)
            writer.writerow([*row, entry.where if entry else ""])
        sys.stdout.write(buf.getvalue())
        return 0
    pretty = [[*row[:4], f"{row[4]:,}", f"{row[5]:,}", row[6], row[7], f"{row[8]:,}"]
              for row in rows]
    print(target.source)
    print(f"{target.label}: input {'x'.join(str(s) for s in a.input_shape)}, batch 1\n")
    print(_table(headers, pretty, {0, 4, 5, 8}))
    print()
    print(f"parameters         {a.num_params:,}")
    print(f"MACs (fvcore)      {a.macs:,}  ({fmt_si(a.macs)})  one multiply-add = one FLOP")
    print(f"FLOPs (2 x MACs)   {a.flops:,}  ({fmt_si(a.flops)})")
    print(f"depth              {a.depth} weight layers")
    rf = final_receptive_field(a)
    if rf:
        print(f"receptive field    {'x'.join(str(v) for v in rf)} px (final feature map "
              f"{'x'.join(str(v) for v in final_feature_map(a))})")
    print(f"training memory    {mem['total'] / 2**20:,.1f} MiB (batch {args.batch}, "
          f"{args.optimizer}, float32, estimate)")
    if args.explain:
        matches = [r for r in a.rows if r.name == args.explain]
        if not matches:
            raise PlaygroundError(f"no layer named {args.explain!r}; see the 'layer' column")
        print()
        print(explain_row(matches[0]))
    return 0


# -- export ------------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from playground.build import check
    from playground.export import EXPORTERS

    spec = _design(args, "export")
    check(spec)
    fn, _ext, _mime = EXPORTERS[args.format]
    text = fn(spec)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


# -- train -------------------------------------------------------------------------------------
def _progress_bar(done: int, total: int, loss: float | None, width: int = 30) -> str:
    filled = int(width * done / max(total, 1))
    bar = "#" * filled + "-" * (width - filled)
    text = f"\r[{bar}] step {done}/{total}"
    return text + (f"  loss {loss:.4f}" if loss is not None else "")


class _Signalled(BaseException):
    """A second SIGTERM/SIGHUP while the run was stopping: give up on it at once."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def cmd_train(args: argparse.Namespace) -> int:
    """Train in this process. SIGTERM and SIGHUP (a closed terminal) end the run like a stop
    request: it becomes ``stopped`` ("the process received SIGTERM") with its metrics and
    summary, and the command exits with 128 + the signal number; a second signal gives up on
    the run at once (``interrupted``). Ctrl-C works as before (exit status 130)."""
    from playground.build import check
    from playground.data import ensure_dataset
    from playground.jobs import request_shutdown
    from playground.targets import fit_to_dataset
    from playground.train import settings_from_dict

    design = _design(args, "training")
    if args.dataset is None:
        from playground.presets import PRESETS

        args.dataset = (PRESETS.get(args.target).dataset if args.target in PRESETS
                        else "shapes")
    spec, notes = fit_to_dataset(design, args.dataset)
    check(spec)
    raw: dict[str, Any] = {
        "dataset": args.dataset, "steps": args.steps, "batch_size": args.batch_size,
        "optimizer": args.optimizer, "schedule": args.schedule, "seed": args.seed,
        "device": args.device, "clip_norm": args.clip_norm, "augment": args.augment,
    }
    if args.lr is not None:
        raw["lr"] = args.lr
    else:
        from playground.optim import OPTIMIZERS

        raw["lr"] = OPTIMIZERS.get(args.optimizer).default_lr
    if args.n_train:
        raw["n_train"] = args.n_train
    settings = settings_from_dict(raw)
    ensure_dataset(settings.dataset)  # download a torchvision set now, or fail in one line
    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        if received:
            raise _Signalled(signum)
        received.append(signum)
        request_shutdown("stopped", f"the process received {_signal_name(signum)}")

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():  # only there can it listen
        for name in ("SIGTERM", "SIGHUP"):
            if hasattr(signal, name):
                signum = int(getattr(signal, name))
                previous[signum] = signal.signal(signum, on_signal)
    try:
        code = _train_run(args, spec, notes, settings, signals=received)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:  # the run has ended stopped, metrics kept; say why in one line, as a shell
        with contextlib.suppress(OSError):  # would, in the exit status
            print(f"stopped: the process received {_signal_name(received[0])}",
                  file=sys.stderr)
        return 128 + received[0]
    return code


def _train_run(args: argparse.Namespace, spec: NetworkSpec, notes: list[str], settings: Any,
               signals: list[int]) -> int:
    """Create the run, train it here with a progress bar, print its summary; the exit status.
    Once ``signals`` (the SIGTERM/SIGHUP received so far) is not empty, a closed terminal is
    no error."""
    from playground.jobs import execute_run
    from playground.runners import KINDS, store_location
    from playground.runs import RunStore

    runner = (args.runner or get_settings().runner).strip().lower()
    if runner not in KINDS:
        raise PlaygroundError(f"unknown runner {runner!r} (PLAYGROUND_RUNNER); one of "
                              f"{', '.join(KINDS)}")
    store = RunStore()
    title = args.title or f"{spec.name} on {args.dataset}"
    run_id = store.create_run(args.owner, title, spec.to_dict(),
                              settings.model_dump(mode="json"))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"run {run_id}: {title} ({settings.steps} steps, {settings.optimizer} "
          f"lr={settings.lr:g}); runner {runner}; store {store_display(store)}",
          file=sys.stderr)

    done = threading.Event()
    total = settings.steps

    def report() -> None:
        cursor, step, loss = 0, 0, None
        while True:
            ended = done.wait(0.5)
            series, cursor = store.poll_metrics(run_id, cursor, ["loss"])  # only what is new
            if series.get("loss", {}).get("steps"):
                step, loss = series["loss"]["steps"][-1], series["loss"]["values"][-1]
            try:
                print(_progress_bar(step, total, loss), end="", file=sys.stderr, flush=True)
            except OSError:  # the terminal closed (SIGHUP follows)
                return
            if ended:  # one last poll, so the bar ends where the run did
                return

    thread = threading.Thread(target=report, daemon=True)
    bar = sys.stderr.isatty() or args.progress
    if bar:
        thread.start()
    try:
        if runner == "local":
            status = execute_run(run_id, store_location(store), runner="local")
        else:
            status = _follow_remote(runner, store, run_id, signals)
    except KeyboardInterrupt:
        store.set_status(run_id, "stopped", "stopped from the keyboard", only_if=("running",))
        raise
    finally:
        done.set()
        if thread.is_alive():
            thread.join(timeout=5)
    run = store.get_run(run_id)
    summary = run.summary
    try:
        if bar or not signals:
            print(file=sys.stderr)
        print(f"run {run_id}: {run.message or status}")
        for key, label, fmt in (("final_val_acc", "validation accuracy", "{:.1%}"),
                                ("best_val_acc", "best validation accuracy", "{:.1%}"),
                                ("final_loss", "final training loss", "{:.4f}"),
                                ("steps_done", "steps", "{}"),
                                ("samples_per_s", "samples/s", "{:,.0f}"),
                                ("wall_s", "wall time (s)", "{:.1f}"),
                                ("device", "device", "{}")):
            if summary.get(key) is not None:
                print(f"  {label:26s} {fmt.format(summary[key])}")
        if run.runner:
            print(f"  {'ran on':26s} {run.runner}, {run.worker_host or '?'}, "
                  f"{run.device or summary.get('device') or '?'}")
        sys.stdout.flush()
    except OSError:
        if not signals:
            raise
    return 0 if status in {"finished", "early_stopped", "stopped"} else 1


def _follow_remote(kind: str, store: Any, run_id: int, signals: list[int]) -> str:
    """Submit ``run_id`` through the ``kind`` runner backend and wait for it to end; a signal
    (SIGTERM/SIGHUP, see :func:`cmd_train`) or Ctrl-C cancels it through the runner first."""
    import time

    from playground.runners import make_runner

    runner = None
    try:
        # one run, then the process ends: no warm-up tasks for Ray (they would hold its slots
        # and be cancelled at exit)
        runner = make_runner(kind, store, **({"warm_up": False} if kind == "ray" else {}))
        runner.submit(run_id)
    except BaseException as exc:  # no cluster to reach: the run must not stay queued forever
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        store.set_status(run_id, "failed", f"not started: the {kind} runner could not take "
                         f"it ({why})", only_if=("queued",))
        if runner is not None:
            with contextlib.suppress(Exception):
                runner.shutdown()
        raise
    try:
        cancelled = False
        while store.get_run(run_id).is_active:
            if signals and not cancelled:
                runner.cancel(run_id, by=SYSTEM)
                cancelled = True
            time.sleep(0.2)
    except KeyboardInterrupt:
        runner.cancel(run_id, by=SYSTEM)
        raise
    finally:
        runner.shutdown()
    return store.get_run(run_id).status


def store_display(store: Any) -> str:
    """Where the store is, for a person: the SQLite file, or the URL without its password."""
    url = getattr(store, "url", None)
    if url and "://" in str(url) and not str(url).startswith("sqlite"):
        try:
            from sqlalchemy.engine import make_url

            return make_url(str(url)).render_as_string(hide_password=True)
        except Exception:  # an odd URL: say which engine only
            return str(url).split("://", 1)[0] + "://..."
    return str(getattr(store, "path", None) or url)


# -- runs --------------------------------------------------------------------------------------
RUN_FIELDS = ("id", "owner", "title", "status", "steps_done", "final_val_acc", "runner", "node",
              "device", "records", "created_at")


def run_rows(store: Any, owner: str | None = None, statuses: list[str] | None = None,
             limit: int = 200) -> list[dict[str, Any]]:
    """One plain dict per run (newest first) with :data:`RUN_FIELDS`: ``steps_done`` from the
    summary of an ended run, else the last step stored; ``final_val_acc`` as a fraction (None
    before the first validation); ``records``: metric records stored."""
    runs = store.list_runs(owner=owner, statuses=statuses, limit=limit)
    counts = store.count_metrics([r.id for r in runs])
    out = []
    for r in runs:
        steps = r.summary.get("steps_done")
        if steps is None:
            steps = max(0, store.last_step(r.id))
        acc = r.summary.get("final_val_acc")
        out.append({"id": r.id, "owner": r.owner, "title": r.title, "status": r.status,
                    "steps_done": int(steps), "final_val_acc": acc, "runner": r.runner,
                    "node": r.worker_host, "device": r.device or r.summary.get("device"),
                    "records": counts.get(r.id, 0), "created_at": r.created_at})
    return out


def cmd_runs(args: argparse.Namespace) -> int:
    """List runs from the configured store (``PLAYGROUND_DB_URL`` or the SQLite file)."""
    from playground.runs import STATUSES, RunStore

    statuses = None
    if args.status:
        statuses = [s.strip() for s in args.status.split(",") if s.strip()]
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            raise PlaygroundError(f"unknown status {unknown[0]!r}; one of {', '.join(STATUSES)}")
    if args.limit < 1:
        raise PlaygroundError("--limit must be at least 1")
    rows = run_rows(RunStore(), args.owner, statuses, min(args.limit, 100_000))
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        who = f" of {args.owner}" if args.owner else ""
        print(f"no runs{who} in the store", file=sys.stderr)
        return 0
    table = [[r["id"], r["owner"], _clip(r["title"], 40), r["status"], r["steps_done"],
              "" if r["final_val_acc"] is None else f"{r['final_val_acc']:.1%}",
              r["runner"] or "", r["node"] or "", r["device"] or "", r["records"]]
             for r in rows]
    print(_table(["id", "owner", "title", "status", "steps", "val acc", "runner", "node",
                  "device", "records"], table, right={0, 4, 5, 9}))
    return 0


# -- inspect -----------------------------------------------------------------------------------
def inspect_run(run_id: int, checkpoint: str = "final") -> dict[str, Any]:
    """What a run's stored weights do on its validation split, as plain data: ``run_id``,
    ``checkpoint``, ``step``, ``accuracy`` (recomputed now from the weights), ``stored_val_acc``
    (what the run recorded for them: the two are equal), ``loss``, ``n``, ``classes``,
    ``per_class`` and ``confusion`` (rows: true class, columns: predicted). The command line
    acts for the server's operator (:data:`~playground.access.SYSTEM`)."""
    from playground import checkpoints, results
    from playground.runs import RunStore
    from playground.spec import spec_from_dict
    from playground.train import settings_from_dict

    store = RunStore()
    model, run, info = checkpoints.load_model(store, run_id, checkpoint, SYSTEM)
    data = results.validation_data(spec_from_dict(run.spec), settings_from_dict(run.settings))
    ev = results.evaluate(model, data).to_dict()
    return {"run_id": run.id, "title": run.title, "owner": run.owner, "checkpoint": info.kind,
            "step": info.step, "accuracy": ev["accuracy"], "stored_val_acc": info.val_acc,
            "loss": ev["loss"], "n": ev["n"], "classes": ev["classes"],
            "per_class": ev["per_class"], "confusion": ev["confusion"]}


def cmd_inspect(args: argparse.Namespace) -> int:
    """Validation accuracy, per-class accuracy and confusion matrix of a run's weights."""
    if args.run_id < 1:
        raise PlaygroundError("RUN_ID is a run number from `python -m playground runs`")
    out = inspect_run(args.run_id, args.checkpoint)
    if args.format == "json":
        print(json.dumps(out, indent=2))
        return 0
    print(f"run {out['run_id']}: {_clip(out['title'], 60)} ({_clip(out['owner'], 30)}), "
          f"{out['checkpoint']} weights from step {out['step']}")
    print(f"validation accuracy {out['accuracy']:.2%} on {out['n']:,} examples "
          f"(loss {out['loss']:.4f})")
    names = [_clip(c, 14) for c in out["classes"]]
    per = [[n, "" if out["per_class"][c] is None else f"{out['per_class'][c]:.1%}", sum(row)]
           for n, c, row in zip(names, out["classes"], out["confusion"], strict=True)]
    print()
    print(_table(["class", "accuracy", "examples"], per, right={1, 2}))
    cols = len(out["confusion"][0]) if out["confusion"] else 0
    heads = names + [f"output {k}" for k in range(len(names), cols)]
    print()
    print("confusion matrix (rows: true class, columns: predicted)")
    print(_table(["true \\ predicted", *heads],
                 [[n, *row] for n, row in zip(names, out["confusion"], strict=True)],
                 right=set(range(1, cols + 1))))
    return 0


def _clip(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters (user text is printed as it is, never run)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


# -- parser ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m playground",
        description="Architecture Playground: analyse, export and train CNNs and MLPs.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("presets", help="list the presets with parameters and MACs")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_presets)

    def target_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("target", nargs="?", help="a preset name, a torchvision model name, "
                       "or a JSON/YAML spec file; a name that is both (vgg16, resnet50...) "
                       "means the preset: tv:vgg16 picks torchvision's, preset:vgg16 the preset")
        p.add_argument("--preset", "--model", "--spec", dest="target_option", metavar="NAME",
                       help="the same as the positional target (--preset vgg11, "
                       "--model resnet50, --spec design.yaml)")
        p.add_argument("--input", help="input shape CxHxW, e.g. 3x224x224")
        p.add_argument("--classes", type=int, help="number of classes")

    p = sub.add_parser("analyse", aliases=["analyze"], help="per-layer shapes, params, MACs, RF")
    target_args(p)
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--batch", type=int, default=32, help="batch size for the memory estimate")
    p.add_argument("--optimizer", default="adam", help="optimiser for the memory estimate")
    p.add_argument("--explain", metavar="LAYER", help="print the formulas behind one layer")
    p.set_defaults(func=cmd_analyse)

    p = sub.add_parser("export", help="export a design as PyTorch code, JSON or YAML")
    target_args(p)
    p.add_argument("--format", choices=["pytorch", "json", "yaml"], default="pytorch")
    p.add_argument("-o", "--output", help="file to write (default: standard output)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("train", help="train a design and record the run in the run store")
    target_args(p)
    p.add_argument("--dataset", help="data set name (default: the preset's own, else shapes)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--lr", type=float, help="learning rate (default: the optimiser's usual)")
    p.add_argument("--schedule", default="constant")
    p.add_argument("--clip-norm", type=float, help="clip the total gradient norm at this")
    p.add_argument("--augment", action="store_true", help="random crops and flips")
    p.add_argument("--n-train", type=int, help="training examples (default: the set's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--owner", default="cli", help="the name the run is stored under")
    p.add_argument("--title", help="run title")
    p.add_argument("--progress", action="store_true", help="progress bar even when piped")
    p.add_argument("--runner", choices=["local", "ray"], help="local: train in this process; "
                   "ray: submit a Ray task (default: PLAYGROUND_RUNNER, else local)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("runs", help="list the runs in the run store")
    p.add_argument("--owner", help="only this person's runs")
    p.add_argument("--status", help="only these statuses, comma-separated (e.g. running,queued)")
    p.add_argument("--limit", type=int, default=200, help="newest runs to list (default 200)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("inspect", help="accuracy, per-class accuracy and confusion matrix of a "
                       "run's stored weights")
    p.add_argument("run_id", type=int, metavar="RUN_ID", help="the run's number (see `runs`)")
    p.add_argument("--checkpoint", choices=["final", "best"], default="final",
                   help="the weights at the end (final) or at the best validation accuracy")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_inspect)

    from playground.cli_assignments import add_parsers  # leaderboard, assignment ...

    add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "target_option"):
        if args.target and args.target_option and args.target != args.target_option:
            parser.error(f"two targets given: {args.target} and {args.target_option}")
        args.target = args.target or args.target_option
        if not args.target:
            parser.error("give a preset name, a torchvision model name or a spec file, e.g. "
                         f"python -m playground {args.command} small_cnn")
    try:
        return int(args.func(args) or 0)
    except PlaygroundError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except _Signalled as sig:
        with contextlib.suppress(OSError):
            print(f"interrupted: the process received {_signal_name(sig.signum)} twice",
                  file=sys.stderr)
        return 128 + sig.signum
    except BrokenPipeError:
        return 0
