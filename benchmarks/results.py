"""How long the Results tab's views take on the CPU, for each preset on its own data set.

For every preset (fitted to its data set, default validation size) the script builds the model
with fresh weights (the views' cost does not depend on training), writes and reads them as
safetensors bytes, rebuilds the validation split from the settings as the tab does, and times
best-of-N: ``load`` (safetensors bytes -> freshly built model), ``evaluate`` (the whole
validation split: confusion, per-class accuracy), ``stored`` (the same from the predictions
the training's last evaluation stored with the checkpoint: what the Results tab does), ``one
image`` (saliency + the feature maps of
every convolution, what a change of image costs) and, for point sets, the decision boundary.

Baseline, in the same run: one plain ``model(x)`` over the validation split in batches of 512
under ``torch.no_grad`` (the least any evaluation can cost). Goal (issue 13): each view within a
second or two for the presets: the tab uses ``stored``; ``evaluate`` is what ``inspect`` and
checkpoints stored without predictions cost (once per run and checkpoint, then cached).
Usage: ``python benchmarks/results.py [--presets small_cnn,lenet5] [--repeats 3]``; the load
average is printed (busy cores slow everything down).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks._timing import best_of
from playground import checkpoints, results
from playground.build import build_model
from playground.jobs import count_params
from playground.presets import list_presets
from playground.settings import get_settings
from playground.targets import fit_to_dataset
from playground.train import TrainSettings

GOAL_S = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", help="comma-separated preset names (default: all)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    wanted = set(args.presets.split(",")) if args.presets else None
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    print(f"load average before: {os.getloadavg()[0]:.2f}; torch threads "
          f"{torch.get_num_threads()}")
    head = (f"{'preset':24s} {'data':8s} {'N':>5s} {'baseline':>9s} {'load':>7s} "
            f"{'evaluate':>9s} {'ratio':>6s} {'stored':>7s} {'one image':>10s} "
            f"{'boundary':>9s}  goal")
    print(head)
    print("-" * len(head))
    limit = get_settings().max_params
    for preset in list_presets():
        if wanted and preset.name not in wanted:
            continue
        spec, _ = fit_to_dataset(preset.spec(), preset.dataset)
        if count_params(spec) > limit:
            continue
        settings = TrainSettings(dataset=preset.dataset, device="cpu")
        try:
            data = results.validation_data(spec, settings)
        except Exception as exc:  # a torchvision set without its files here
            print(f"{preset.name:24s} {preset.dataset:8s} skipped: {str(exc)[:60]}")
            continue
        torch.manual_seed(0)
        model = build_model(spec).eval()
        blob = checkpoints.to_bytes(model.state_dict())

        def load(blob: bytes = blob, spec=spec) -> torch.nn.Module:
            fresh = build_model(spec)
            fresh.load_state_dict(checkpoints.from_bytes(blob))
            return fresh.eval()

        def bare(model=model, data=data) -> None:
            with torch.no_grad():
                for i in range(0, data.n, results.EVAL_BATCH):
                    model(data.x[i:i + results.EVAL_BATCH])

        def one_image(model=model, data=data) -> None:
            results.saliency(model, data.x[0], classes=data.classes)
            results.feature_maps(model, data.x[0], which="conv")

        t_bare = best_of(bare, args.repeats)
        t_load = best_of(load, args.repeats)
        t_eval = best_of(lambda model=model, data=data: results.evaluate(model, data),
                         args.repeats)
        ev = results.evaluate(model, data)
        t_stored = best_of(lambda data=data, ev=ev: results.evaluation_from_predictions(
            data, torch.as_tensor(ev.pred), torch.as_tensor(ev.confidence), len(ev.labels),
            ev.loss), args.repeats)
        t_one = best_of(one_image, args.repeats)
        t_bound = (best_of(lambda model=model, data=data: results.decision_boundary(
            model, data), args.repeats) if data.kind == "points" else None)
        worst = max(t for t in (t_load, t_stored, t_one, t_bound) if t is not None)
        print(f"{preset.name:24s} {preset.dataset:8s} {data.n:5d} {t_bare:8.3f}s "
              f"{t_load:6.3f}s {t_eval:8.3f}s {t_eval / t_bare:5.2f}x {t_stored:6.3f}s "
              f"{t_one:9.3f}s "
              f"{'' if t_bound is None else f'{t_bound:8.3f}s':>9s}  "
              f"{'ok' if worst <= GOAL_S else 'over'}")
        sys.stdout.flush()
    print(f"load average after: {os.getloadavg()[0]:.2f} (at {time.strftime('%H:%M:%S')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
