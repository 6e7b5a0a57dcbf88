"""A run's weights in the run store: the final ones and those at the best validation accuracy.

Conventions
-----------
- Two kinds per run (:data:`KINDS`): ``final`` (the weights at the last step, kept when the
  last evaluation was at that step and the run neither diverged nor failed) and ``best``
  (the weights when the validation accuracy was highest). Each row records the step and the
  validation accuracy measured on exactly those weights, so loading them into a freshly built
  model and evaluating the same split gives the same number.
- Weights are ``safetensors`` bytes (Hugging Face's format: a JSON header and raw tensors, no
  code), never pickle: a checkpoint is read with :func:`safetensors.torch.load`, which cannot
  run anything a worker wrote. They live in the database (``checkpoints`` table), so a store on
  PostgreSQL needs no disk shared between the web server and the GPU workers.
- ``PLAYGROUND_MAX_CHECKPOINT_MB`` (default 64, in 10^6 bytes; 0 keeps none) caps the size of
  one copy of the ``state_dict``: a larger model keeps its metrics, and its run's meta
  ``weights_note`` says why it has no weights.
- Reading checks the owner (:func:`playground.access.check_owner` through
  :meth:`~playground.runs.RunStore.get_run`); deleting a run deletes its weights
  (:meth:`~playground.runs.RunStore.delete_run`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from playground.access import Actor
from playground.errors import PlaygroundError
from playground.runs import Run, RunStore
from playground.settings import get_settings
from playground.store.schema import checkpoints

if TYPE_CHECKING:
    from torch import Tensor, nn

    from playground.train import Weights

KINDS = ("final", "best")
MB = 1_000_000


@dataclass(frozen=True)
class CheckpointInfo:
    """One stored checkpoint, without its bytes."""

    run_id: int
    kind: str
    step: int
    val_acc: float | None
    nbytes: int
    created_at: float


def max_bytes() -> int:
    """The most bytes one kept copy of a model's weights may take here."""
    return int(get_settings().max_checkpoint_mb * MB)


def too_large_note(nbytes: int) -> str:
    """Why a run of ``nbytes`` of weights has none stored."""
    cap = get_settings().max_checkpoint_mb
    if cap <= 0:
        return "no weights are kept on this server (PLAYGROUND_MAX_CHECKPOINT_MB is 0)"
    return (f"no weights kept: the model's weights take {nbytes / MB:.1f} MB, more than the "
            f"{cap:g} MB this server keeps per run (PLAYGROUND_MAX_CHECKPOINT_MB)")


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise PlaygroundError(f"unknown checkpoint {kind!r}; choose one of {', '.join(KINDS)}")
    return kind


def to_bytes(state: dict[str, Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """``state`` as safetensors bytes (tensors made contiguous CPU copies first)."""
    from safetensors.torch import save

    plain = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    return save(plain, metadata=metadata)


def from_bytes(data: bytes) -> dict[str, Tensor]:
    """The state dict in safetensors ``data``; one clear error for anything else."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(bytes(data))
    except (SafetensorError, ValueError, OSError) as exc:
        raise PlaygroundError(f"the stored weights cannot be read ({exc})") from None


def save_weights(store: RunStore, run_id: int, weights: dict[str, Weights]) -> list[str]:
    """Store each of ``weights`` (``kind -> Weights``) for ``run_id``, replacing any stored
    before; returns the kinds stored. Called by the training job (the system), not a user."""
    rows = []
    now = time.time()
    for kind, w in sorted(weights.items(), key=lambda kw: KINDS.index(_check_kind(kw[0]))):
        data = to_bytes(w.state, {"run_id": str(run_id), "kind": _check_kind(kind),
                                  "step": str(w.step)})
        preds = (to_bytes({"pred": w.pred, "conf": w.conf})
                 if w.pred is not None and w.conf is not None else None)
        rows.append({"run_id": int(run_id), "kind": kind, "step": int(w.step),
                     "val_acc": w.val_acc, "nbytes": len(data), "data": data,
                     "created_at": now, "val_loss": w.val_loss, "predictions": preds})
    if rows:
        with store.database.write() as con:
            con.execute(sa.delete(checkpoints).where(
                checkpoints.c.run_id == int(run_id),
                checkpoints.c.kind.in_([r["kind"] for r in rows])))
            con.execute(sa.insert(checkpoints), rows)
    return [r["kind"] for r in rows]


_INFO = (checkpoints.c.run_id, checkpoints.c.kind, checkpoints.c.step, checkpoints.c.val_acc,
         checkpoints.c.nbytes, checkpoints.c.created_at)


def list_checkpoints(store: RunStore, run_id: int, by: Actor) -> list[CheckpointInfo]:
    """The checkpoints of run ``run_id`` (``final`` first), for whoever may read the run."""
    store.get_run(run_id, by)
    rows = store.database.read(sa.select(*_INFO).where(checkpoints.c.run_id == int(run_id)))
    infos = [CheckpointInfo(int(r[0]), str(r[1]), int(r[2]),
                            None if r[3] is None else float(r[3]), int(r[4]), float(r[5]))
             for r in rows]
    return sorted(infos, key=lambda i: KINDS.index(i.kind) if i.kind in KINDS else 9)


def checkpoint_bytes(store: RunStore, run_id: int, kind: str, by: Actor
                     ) -> tuple[bytes, CheckpointInfo]:
    """The safetensors bytes of one checkpoint (for "Download weights"), with its info."""
    run = store.get_run(run_id, by)
    _check_kind(kind)
    rows = store.database.read(sa.select(*_INFO, checkpoints.c.data).where(
        checkpoints.c.run_id == int(run_id), checkpoints.c.kind == kind))
    if not rows:
        raise PlaygroundError(f"run #{run_id} has no {kind} weights: "
                              f"{no_weights_reason(store, run)}")
    r = rows[0]
    info = CheckpointInfo(int(r[0]), str(r[1]), int(r[2]),
                          None if r[3] is None else float(r[3]), int(r[4]), float(r[5]))
    return bytes(r[6]), info


def no_weights_reason(store: RunStore, run: Run) -> str:
    """Why ``run`` has no (or not this) checkpoint, in one line."""
    note = store.get_meta(run.id, "weights_note")
    if note:
        return str(note)
    if run.is_active:
        return "the run has not ended yet"
    if run.status == "diverged":
        return "the run diverged before any evaluation"
    return "the run ended before its first evaluation"


@dataclass(frozen=True)
class StoredPredictions:
    """What the training's evaluation of these weights predicted for each validation example
    (in the split's order): ``pred`` int64, ``conf`` float32 (softmax probability of ``pred``),
    and the validation loss."""

    pred: Tensor
    conf: Tensor
    val_loss: float | None


def load_predictions(store: RunStore, run_id: int, kind: str, by: Actor
                     ) -> StoredPredictions | None:
    """The stored validation predictions of one checkpoint; ``None`` when it has none."""
    store.get_run(run_id, by)
    rows = store.database.read(sa.select(checkpoints.c.predictions, checkpoints.c.val_loss)
                               .where(checkpoints.c.run_id == int(run_id),
                                      checkpoints.c.kind == _check_kind(kind)))
    if not rows or rows[0][0] is None:
        return None
    tensors = from_bytes(rows[0][0])
    if set(tensors) != {"pred", "conf"}:
        raise PlaygroundError(f"the stored predictions of run #{run_id} cannot be read")
    return StoredPredictions(tensors["pred"], tensors["conf"],
                             None if rows[0][1] is None else float(rows[0][1]))


def load_state(store: RunStore, run_id: int, kind: str, by: Actor
               ) -> tuple[dict[str, Tensor], CheckpointInfo]:
    """The state dict of one checkpoint, read with safetensors."""
    data, info = checkpoint_bytes(store, run_id, kind, by)
    return from_bytes(data), info


def load_model(store: RunStore, run_id: int, kind: str, by: Actor
               ) -> tuple[nn.Module, Run, CheckpointInfo]:
    """A freshly built model of the run's design with the stored weights loaded (CPU, eval
    mode), the run, and the checkpoint's info."""
    from playground.build import build_model
    from playground.spec import spec_from_dict

    run = store.get_run(run_id, by)
    state, info = load_state(store, run_id, kind, by)
    model = build_model(spec_from_dict(run.spec))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise PlaygroundError(f"the stored weights do not fit run #{run_id}'s design "
                              f"({first})") from None
    return model.eval(), run, info
