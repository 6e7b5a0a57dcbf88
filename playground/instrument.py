"""Per-step instrumentation of :func:`playground.train.train`: every value stays on the device
until a flush turns a batch of steps into plain records.

- :class:`StepNorms`: the L2 norms of every gradient, layer weight and layer update of a step
  in four calls whatever the depth (one padded buffer, row-wise norms);
- :class:`ActivationStats`: forward hooks, attached only for the passes that record, and the
  statistics of their outputs computed together;
- :class:`Recorder`: per-step values kept on the device and turned into records at each flush
  (one copy to the host), with the conventions of :mod:`playground.train`'s module doc.

Nothing here knows about a UI or a run store: records leave through ``emit``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

Record = dict[str, Any]
Emit = Callable[[list[Record]], None]

SATURATION = 0.97  # |tanh| above, or sigmoid outside [0.03, 0.97]: slope under ~6-12% of max
_SERIAL_NUMEL = 1 << 22  # instrumentation buffers up to this size use one CPU thread


@dataclass
class StatsGroup:
    """Statistics of some activations of one forward pass, computed together (device tensors).

    ``index``: which activations; ``mean``, ``sq_dev`` (the sum of squared deviations from the
    mean, ``sum (x - mean)^2``) and ``count`` (live units for ReLU, saturated elements for
    sigmoid/tanh; None otherwise) have one entry per activation; ``numel`` and ``units``
    (elements per example) are the same for all of them.
    """

    index: list[int]
    mean: Tensor
    sq_dev: Tensor
    count: Tensor | None
    numel: int
    units: int


StatsSample = list[StatsGroup]
_STATS_STACK_NUMEL = 1 << 24  # activations stacked for one set of kernels, at most (elements)


class ActivationStats:
    """Forward hooks on the activation modules, attached only for the passes that record.

    A hook only keeps the output (a reference, plus its version counter). :meth:`detach` then
    stacks the outputs of one shape and kind (up to ``_STATS_STACK_NUMEL`` elements at a time)
    and computes their statistics together, a handful of kernels for ten layers instead of
    seven per layer, leaving small tensors on the device (no host sync):
    - the mean and the sum of squared deviations from it (two passes, exact where
      ``E[x^2] - E[x]^2`` would cancel; ``sum`` adds pairwise and stays accurate over millions
      of elements, where a float32 ``vector_norm`` was off by 3e-4);
    - a count: live units for ReLU (``amax`` over the batch is > 0), saturated elements for
      sigmoid/tanh.
    They become records at the next flush (``Recorder.collect``). An output that something
    changed in place after its activation (its version counter moved) is left out rather than
    misreported: its statistics of that step are missing.
    """

    def __init__(self, modules: list[tuple[str, nn.Module]]):
        self.modules = modules
        self.kinds = ["relu" if isinstance(m, nn.ReLU) else "sigmoid" if isinstance(m, nn.Sigmoid)
                      else "tanh" if isinstance(m, nn.Tanh) else "" for _, m in modules]
        self.seen: dict[int, tuple[Tensor, int]] = {}
        self.handles: list[torch.utils.hooks.RemovableHandle] = []

    def attach(self) -> None:
        self.seen = {}
        for i, (_, m) in enumerate(self.modules):
            self.handles.append(m.register_forward_hook(self._hook(i)))

    def _hook(self, index: int) -> Callable[..., None]:
        def hook(mod: nn.Module, args: Any, out: Any) -> None:
            if isinstance(out, Tensor):  # a module called twice: its last output counts
                self.seen[index] = (out.detach(), out._version)

        return hook

    def detach(self) -> StatsSample | None:
        """Remove the hooks; the statistics of what they saw (None: no hook was called)."""
        for h in self.handles:
            h.remove()
        self.handles = []
        if not self.seen:
            return None
        seen, self.seen = self.seen, {}
        batches: dict[tuple[Any, ...], list[list[int]]] = {}
        for i, (o, version) in seen.items():
            if o._version != version:
                continue  # changed in place since: its values are no longer the activation's
            chunks = batches.setdefault((self.kinds[i], o.shape, o.dtype, o.device), [[]])
            if chunks[-1] and (len(chunks[-1]) + 1) * o.numel() > _STATS_STACK_NUMEL:
                chunks.append([])
            chunks[-1].append(i)
        with torch.no_grad():
            return [self._summarise(index, [seen[i][0] for i in index], kind)
                    for (kind, *_), chunks in batches.items() for index in chunks]

    @staticmethod
    def _summarise(index: list[int], outs: list[Tensor], kind: str) -> StatsGroup:
        x = torch.stack(outs) if len(outs) > 1 else outs[0][None]
        if x.dtype != torch.float32:
            x = x.float()
        k = len(outs)
        flat = x.reshape(k, -1)
        mean = flat.mean(1)
        sq_dev = (flat - mean[:, None]).square_().sum(1)
        count: Tensor | None = None
        if kind == "relu":  # units (one channel at one position) alive for any example
            alive = x.reshape(k, x.shape[1], -1).amax(1) if x.dim() > 1 else flat
            count = torch.count_nonzero(alive, dim=1)
        elif kind == "sigmoid":  # below 0.03 or above 0.97
            count = torch.count_nonzero((flat - 0.5).abs_() > SATURATION - 0.5, dim=1)
        elif kind == "tanh":
            count = torch.count_nonzero(flat.abs() > SATURATION, dim=1)
        numel = outs[0].numel()
        units = outs[0][0].numel() if outs[0].dim() else 1
        return StatsGroup(index, mean, sq_dev, count, numel, units)


def _chunk_size(numel: int) -> int:
    """Row length of :class:`StepNorms` buffers: about 512 rows for all the tensors, a power
    of two from 64 to 16384 (the padding, under one row per tensor, stays small)."""
    return 1 << min(max((max(numel, 1) // 512).bit_length(), 6), 14)


@dataclass
class _Segment:
    """The tensors of one dtype and device in one ``(rows, C)`` buffer (see StepNorms)."""

    buf: Tensor  # gradient rows, then bank 0, then bank 1
    grad_index: list[int]  # which parameters
    grad_views: list[Tensor]  # where each one is copied
    weight_index: list[int]  # which layers
    bank_views: tuple[list[Tensor], list[Tensor]]  # where each weight is copied, per bank
    # (rows written after update k, rows holding update k) for k even and k odd
    now_before: tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]


class StepNorms:
    """Per-step L2 norms of every gradient, every layer weight and every layer's update.

    All tensors of one dtype and device (in practice: all) are copied into one zero-padded
    ``(rows, C)`` buffer: each tensor fills whole rows of ``C`` elements (the rest of its last
    row stays zero, which changes no norm). The buffer holds the gradients, then two banks of
    the layer weights used in turn: after update ``k`` the weights are copied into bank
    ``k % 2``, the other bank still holds the weights after update ``k - 1``, and subtracting
    the new ones from it leaves the (negated) update of step ``k`` there. A step then costs
    two ``torch._foreach_copy_`` (one per-tensor loop in C++), one subtraction and one
    ``vector_norm(dim=1)`` giving every row's norm: four calls whatever the depth, where
    per-tensor copies and norms from Python cost dozens of kernel launches, which dominate a
    small network's instrumentation on a CPU. The row norms of a flush are gathered per
    tensor once, in :meth:`tensor_norms` (sums of squared row norms, in float64 where the
    device has it, so that vanishing gradients do not underflow). ``||w_before||`` of step
    ``k`` is the weight norm of step ``k - 1``; :meth:`start` gives the one at
    initialisation. Memory: one copy of the parameters and two of the layer weights, plus
    padding.

    :meth:`grads` copies the gradients in before any clipping (their norms are the unclipped
    ones); :meth:`weights`, after the update, takes all the row norms and writes them into one
    row of tables allocated once for ``steps`` steps (nothing is allocated per step).
    :meth:`gather` joins the rows into ``width`` columns; column ``r`` belongs to column
    ``owner[r]`` of :meth:`tensor_norms`: ``grad_col[i]`` for parameter ``i``,
    ``bank_col[b][j]`` for layer ``j`` in bank ``b``.

    On a CPU, buffers up to ``_SERIAL_NUMEL`` elements are processed on one thread: the work
    is a few microseconds of memory traffic, and waking an idle OpenMP worker for each of the
    larger calls cost more than the whole of it (measured: 52 us against 22 us a step for a
    deep MLP on two cores).
    """

    def __init__(self, params: list[Tensor], weights: list[Tensor], steps: int,
                 chunk: int | None = None):
        P, L = len(params), len(weights)
        size = chunk or _chunk_size(sum(t.numel() for t in params + weights + weights))
        keys = list(dict.fromkeys((t.dtype, t.device) for t in params + weights))
        self.grad_col = list(range(P))
        self.bank_col = [[P + j for j in range(L)], [P + L + j for j in range(L)]]
        self.n_cols = P + 2 * L
        self.segments: list[_Segment] = []
        owners: list[int] = []
        for dtype, device in keys:
            gi = [i for i, t in enumerate(params) if (t.dtype, t.device) == (dtype, device)]
            wi = [j for j, t in enumerate(weights) if (t.dtype, t.device) == (dtype, device)]
            plan = [(params[i], i) for i in gi] + [
                (weights[j], self.bank_col[b][j]) for b in (0, 1) for j in wi]
            rows = [-(-t.numel() // size) for t, _ in plan]
            buf = torch.zeros(sum(rows), size, dtype=dtype, device=device)
            flat, start = buf.view(-1), 0
            views: list[Tensor] = []
            owner: list[int] = []
            for (t, col), r in zip(plan, rows, strict=True):
                views.append(flat[start * size:start * size + t.numel()].view_as(t))
                owner += [col] * r
                start += r
            g = sum(rows[:len(gi)])
            w = (buf.shape[0] - g) // 2
            bank0, bank1 = buf[g:g + w], buf[g + w:]
            n = len(gi)
            self.segments.append(_Segment(
                buf, gi, views[:n], wi, (views[n:n + len(wi)], views[n + len(wi):]),
                ((bank0, bank1), (bank1, bank0))))
            owners += owner
        self.width = len(owners)
        self.owner = torch.tensor(owners, dtype=torch.long)
        self._one = len(keys) == 1  # one segment holds every tensor: no index lists per step
        serial = all(s.buf.device.type == "cpu" and s.buf.numel() <= _SERIAL_NUMEL
                     for s in self.segments)
        # the intra-op threads to restore after each serial call (1: nothing to switch)
        self._threads = torch.get_num_threads() if serial else 1
        # the row norms of ``steps`` steps, one table per buffer, and each row's views made
        # once (a view per step would cost as much as the norm of a small network)
        self._tables = [torch.empty(steps, s.buf.shape[0], dtype=s.buf.dtype,
                                    device=s.buf.device) for s in self.segments]
        self._rows = list(zip(*(t.unbind(0) for t in self._tables), strict=True))

    def _pick(self, tensors: list[Tensor], index: list[int]) -> list[Tensor]:
        return tensors if self._one else [tensors[i] for i in index]

    def start(self, weights: list[Tensor]) -> Tensor:
        """Copy the initial weights into bank 0; their norms, in layer order."""
        for s in self.segments:
            if s.weight_index:
                torch._foreach_copy_(s.bank_views[0], self._pick(weights, s.weight_index))
        if not weights:
            return torch.zeros(0, device=self.segments[0].buf.device if self.segments else None)
        return torch.stack(torch._foreach_norm(weights)).float()

    def grads(self, grads: list[Tensor]) -> None:
        """Copy the gradients in, before any clipping."""
        threads = self._threads
        if threads > 1:
            torch.set_num_threads(1)
        try:
            for s in self.segments:
                if s.grad_index:
                    torch._foreach_copy_(s.grad_views, self._pick(grads, s.grad_index))
        finally:
            if threads > 1:
                torch.set_num_threads(threads)

    def weights(self, weights: list[Tensor], step: int, row: int) -> None:
        """After update ``step``: copy the weights in, form the updates, and write every row
        norm into row ``row`` (of ``steps``) of the tables; nothing is allocated."""
        threads = self._threads
        if threads > 1:
            torch.set_num_threads(1)
        try:
            bank = step % 2
            for s, out in zip(self.segments, self._rows[row], strict=True):
                if s.weight_index:
                    torch._foreach_copy_(s.bank_views[bank], self._pick(weights, s.weight_index))
                    now, before = s.now_before[bank]
                    before.sub_(now)
                torch.linalg.vector_norm(s.buf, dim=1, out=out)
        finally:
            if threads > 1:
                torch.set_num_threads(threads)

    def gather(self, n: int) -> Tensor:
        """The row norms written to rows ``0..n-1`` as one ``(n, width)`` table, in float32 or
        wider (columns in the order of :attr:`owner`)."""
        if len(self._tables) == 1:
            return self._tables[0][:n]
        wide = torch.float32
        for t in self._tables:
            wide = torch.promote_types(wide, t.dtype)
        return torch.cat([t[:n].to(wide) for t in self._tables], dim=1)

    def tensor_norms(self, rows: Tensor) -> Tensor:
        """``(n, width)`` row norms of ``n`` steps -> ``(n, n_cols)`` *squared* tensor norms."""
        wide = torch.float32 if rows.device.type == "mps" else torch.float64
        out = torch.zeros(rows.shape[0], self.n_cols, dtype=wide, device=rows.device)
        return out.index_add_(1, self.owner.to(rows.device), rows.to(wide).square())


class Recorder:
    """Keeps per-step values on the device; turns them into records at each flush.

    Each step leaves on the device its loss, its logits and labels (the accuracy is computed
    at the flush) and one row of :class:`StepNorms`' row norms, written into tables of
    ``cap`` rows allocated once. At the flush the rows become one ``(steps, width)`` table:
    the total norm, the reordering by layer and the update ratios are computed once for all
    buffered steps, followed by one copy to the host.
    """

    def __init__(self, emit: Emit, norms: StepNorms, layer_grad_cols: list[int],
                 weight_norms: Tensor, samples_per_step: int, act_kinds: list[str], cap: int):
        self.emit = emit
        self.cap = cap
        self.width = norms.width
        self.step_norms = norms
        device = weight_norms.device
        self.n_params = len(norms.grad_col)  # the first columns of tensor_norms
        self.layer_grad_cols = torch.tensor(layer_grad_cols, device=device)  # layer weights
        self.bank_cols = torch.tensor(norms.bank_col, device=device)  # (2, L)
        self.prev_weight_norms = weight_norms  # (L,) norms before the next buffered step
        self.n_layers = len(layer_grad_cols)
        self.act_kinds = act_kinds
        self.samples = samples_per_step
        self.out: list[Record] = []
        self.last_loss: float | None = None  # training loss of the last good step
        self.flush_losses: list[float] = []  # the good steps' losses of the last collect
        self.early: int | None = None  # the step whose loss and accuracy went out early
        self._reset()

    def _reset(self) -> None:
        self.steps: list[int] = []
        self.lrs: list[float] = []
        self.loss: list[Tensor] = []
        self.logits: list[Tensor] = []  # (B, classes) per micro-batch
        self.labels: list[Tensor] = []  # (B,) per micro-batch
        self.clipped: list[Tensor] = []  # total norm after clipping (only when clipping)
        self.stats: list[tuple[int, StatsSample]] = []

    def add_batch(self, logits: Tensor, labels: Tensor) -> None:
        self.logits.append(logits)
        self.labels.append(labels)

    def add_step(self, step: int, lr: float, loss: Tensor, clipped: Tensor | None,
                 weights: list[Tensor]) -> None:
        """Record update ``step`` (the gradients went to :meth:`StepNorms.grads` before it)."""
        self.step_norms.weights(weights, step, len(self.steps))
        self.steps.append(step)
        self.lrs.append(lr)
        self.loss.append(loss)
        if clipped is not None:
            self.clipped.append(clipped)

    def send_early(self, step: int, loss: Tensor, logits: Tensor, labels: Tensor) -> None:
        """Emit the loss and accuracy of ``step`` now, from its forward pass (one host sync).

        A live chart then gets its first point before the backward pass, which for a large
        network on a CPU takes seconds; :meth:`collect` leaves these two records out later. A
        loss that is not finite is not sent (the flush finds the divergence as usual), and
        only a step of a single micro-batch can be sent this way.
        """
        value = float(loss.detach())
        if not math.isfinite(value):
            return
        correct = float((logits.detach().argmax(1) == labels).sum())
        self.early = step
        self.emit([{"step": step, "name": "loss", "value": value},
                   {"step": step, "name": "acc", "value": correct / self.samples}])

    def add_stats(self, step: int, stats: StatsSample) -> None:
        self.stats.append((step, stats))

    def collect(self, check_grads: bool = True) -> tuple[int | None, str]:
        """Move the buffer to host records. Returns (first bad step, what went bad) or (None, "").

        Records from the first step whose loss (or, with ``check_grads``, gradient norm) is
        not finite onwards are dropped; so are records holding any non-finite value.
        """
        n, L = len(self.steps), self.n_layers
        bad: int | None = None
        what = ""
        self.flush_losses = []
        if n:
            rows = self.step_norms.gather(n)  # (n, width) row norms
            sq = self.step_norms.tensor_norms(rows)  # (n, P + 2L) squared norms, float64
            gn = sq[:, :self.n_params].sum(1).sqrt().float()  # (n,) total, before clipping
            gnc = torch.stack(self.clipped).float() if self.clipped else gn
            layer_gn = sq[:, self.layer_grad_cols].sqrt().float()  # (n, L) weight gradients
            # step k wrote its weights to bank k % 2 and its update to the other bank
            parity = torch.tensor(self.steps, device=sq.device) % 2
            wn = sq.gather(1, self.bank_cols[parity]).sqrt()  # (n, L) after each step
            dn = sq.gather(1, self.bank_cols[1 - parity]).sqrt()  # (n, L) each update
            before = torch.cat([self.prev_weight_norms[None].to(wn.dtype), wn[:-1]])
            self.prev_weight_norms = wn[-1]
            ratio = (dn / before.clamp_min(1e-12)).float()
            m = n * self.samples  # every step sees samples_per_step examples; a step that
            # failed half-way may have left more logits: they are not counted
            hits = torch.cat(self.logits)[:m].argmax(1) == torch.cat(self.labels)[:m]
            correct = hits.view(n, -1).sum(1).float()
            flat = torch.cat([
                torch.stack(self.loss).float(), correct, gn, gnc,
                layer_gn.reshape(-1), ratio.reshape(-1),
            ]).cpu().tolist()  # one device -> host copy per flush
            loss, correct = flat[:n], flat[n:2 * n]
            gn_h, gnc_h = flat[2 * n:3 * n], flat[3 * n:4 * n]
            lg, rt = flat[4 * n:4 * n + n * L], flat[4 * n + n * L:]
            out, samples, isfinite = self.out, self.samples, math.isfinite
            good = n
            for i, step in enumerate(self.steps):
                lo, g = loss[i], gn_h[i]
                if not isfinite(lo):
                    bad, what, good = step, "the loss", i
                    break
                if not isfinite(g) and check_grads:
                    bad, what, good = step, "the gradients", i
                    break
                self.last_loss = lo
                if step != self.early:
                    out += [
                        {"step": step, "name": "loss", "value": lo},
                        {"step": step, "name": "acc", "value": correct[i] / samples},
                    ]
                out.append({"step": step, "name": "lr", "value": self.lrs[i]})
                if not isfinite(g):  # an fp16 step the grad scaler skipped: no grad records
                    continue
                a, b = i * L, (i + 1) * L
                out += [
                    {"step": step, "name": "grad_norm", "value": g},
                    {"step": step, "name": "grad_norm_clipped", "value": gnc_h[i]},
                    {"step": step, "name": "grad_norm_layer", "values": lg[a:b]},
                ]
                self._vector(step, "update_ratio_layer", rt[a:b])
            self.flush_losses = loss[:good]
        self._collect_stats(bad)
        self._reset()
        return bad, what

    def _collect_stats(self, bad: int | None) -> None:
        keep = [(step, sample) for step, sample in self.stats if bad is None or step < bad]
        groups = [g for _, sample in keep for g in sample]
        if not groups:
            return
        # one copy for all the sums, one for all the counts
        fl = torch.cat([t for g in groups for t in (g.mean, g.sq_dev)]).float().cpu().tolist()
        counts = [g.count for g in groups if g.count is not None]
        ct = torch.cat(counts).cpu().tolist() if counts else []
        f = c = 0
        n_act = len(self.act_kinds)
        for step, sample in keep:
            mean, std, dead, sat = ([math.nan] * n_act for _ in range(4))
            for g in sample:
                k = len(g.index)
                means, sq_devs = fl[f:f + k], fl[f + k:f + 2 * k]
                f += 2 * k
                live = ct[c:c + k] if g.count is not None else [0] * k
                c += k if g.count is not None else 0
                for i, m, d, n_c in zip(g.index, means, sq_devs, live, strict=True):
                    kind = self.act_kinds[i]
                    mean[i] = m
                    std[i] = math.sqrt(max(d, 0.0) / max(g.numel, 1))
                    # relu: n_c counts live units (of `units` per example); else none is dead
                    dead[i] = 1.0 - n_c / max(g.units, 1) if kind == "relu" else 0.0
                    sat[i] = n_c / max(g.numel, 1) if kind in {"sigmoid", "tanh"} else 0.0
            for name, row in zip(("act_mean", "act_std", "act_dead", "act_saturated"),
                                 (mean, std, dead, sat), strict=True):
                self._vector(step, name, row)

    def scalar(self, step: int, name: str, value: float) -> None:
        """Queue one scalar record for the next ``send`` (left out when not finite)."""
        if math.isfinite(value):
            self.out.append({"step": step, "name": name, "value": float(value)})

    def _vector(self, step: int, name: str, values: list[float]) -> None:
        # the sum of float32 values in float64 is finite exactly when every value is
        if math.isfinite(sum(values)):
            self.out.append({"step": step, "name": name, "values": values})

    def send(self) -> None:
        if self.out:
            batch, self.out = self.out, []
            self.emit(batch)
