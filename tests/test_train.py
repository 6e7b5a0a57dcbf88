"""Tests of the instrumented trainer and the optimiser/schedule registries.

Oracles rather than echoes: learning is checked by a loss that really falls and a validation
accuracy far above chance; schedules against PyTorch's own ``StepLR``/``ExponentialLR``/
``CosineAnnealingLR`` and hand-written formulas; the update ratio against ``lr * ||g|| / ||w||``
for plain SGD; activation statistics against a forward pass with ``torch.std_mean``; gradient
clipping against its bound. Everything is seeded; the whole file runs in well under 90 s on
two CPU cores.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from playground.build import build_model
from playground.data import DataSplit, load_dataset
from playground.divergence import GROWTH_FACTOR, MIN_START_LOSS, LossGrowth
from playground.errors import ConfigError, PlaygroundError
from playground.optim import OPTIMIZERS, SCHEDULES, build_optimizer, build_schedule
from playground.presets import get_preset
from playground.spec import Defaults, HeadSpec, InputSpec, NetworkSpec, StageSpec
from playground.train import (
    SERIES,
    STATUSES,
    TrainSettings,
    activation_labels,
    gradient_profile,
    layer_labels,
    settings_from_dict,
    settings_from_json,
    train,
)

# -- helpers -----------------------------------------------------------------------------------


def run(spec: NetworkSpec, data: DataSplit | None = None, **settings):
    """Train and return (result, records)."""
    records: list[dict] = []
    result = train(spec, TrainSettings(**settings), emit=records.extend, data=data)
    return result, records


def series(records: list[dict], name: str) -> dict[int, float | list[float]]:
    """step -> value (or values) of one series."""
    out: dict[int, float | list[float]] = {}
    for r in records:
        if r["name"] == name:
            out[r["step"]] = r["value"] if "value" in r else r["values"]
    return out


def labels(records: list[dict], name: str) -> list[str]:
    [rec] = [r for r in records if r["name"] == name]
    assert rec["step"] == 0
    return rec["labels"]


def relu_mlp(depth: int = 3) -> NetworkSpec:
    """A ReLU MLP without normalisation for 16x16 digits: easy to blow up with a high lr."""
    return NetworkSpec(
        input=InputSpec(channels=1, height=16, width=16),
        num_classes=10,
        stages=(StageSpec(block="linear", depth=depth, width=64),),
        defaults=Defaults(activation="relu", norm="none"),
        head=HeadSpec(pool="flatten"),
    )


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine, OpenMP threads that wait for a busy
    core make tiny ops hundreds of times slower; one thread keeps the timing predictable."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits() -> DataSplit:
    return load_dataset("digits")


@pytest.fixture(scope="module")
def spirals() -> DataSplit:
    return load_dataset("spirals", n_train=256, n_val=128)


@pytest.fixture(scope="module")
def points_spec() -> NetworkSpec:
    return get_preset("mlp_points")


# -- learning ----------------------------------------------------------------------------------


def test_small_cnn_learns_shapes() -> None:
    shape = (3, 16, 16)  # the preset re-targeted to 16x16: the same network, 4x less compute
    spec = get_preset("small_cnn", input=InputSpec(channels=3, height=16, width=16))
    data = load_dataset("shapes", input_shape=shape, n_train=2000, n_val=500)
    result, records = run(spec, data, steps=120, batch_size=32, eval_every=40,
                          stats_every=40, n_train=2000, n_val=500)
    assert result.status == "finished", result.message
    loss = [v for _, v in sorted(series(records, "loss").items())]
    assert len(loss) == 120
    assert sum(loss[-20:]) / 20 < 0.8 * sum(loss[:20]) / 20
    val_acc = series(records, "val_acc")
    assert sorted(val_acc) == [40, 80, 120]
    assert val_acc[120] > 0.35  # chance is 0.10
    s = result.summary
    assert s["final_val_acc"] == pytest.approx(val_acc[120])
    assert s["best_val_acc"] == max(val_acc.values())
    assert s["steps_done"] == 120 and s["num_params"] == sum(
        p.numel() for p in build_model(spec).parameters())
    assert s["samples_per_s"] > 0 and s["device"] == "cpu"
    assert "finished 120 steps" in result.message


# -- the vanishing-gradient lesson ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "fixed", "dataset"),
    [("deep_sigmoid_mlp", "deep_relu_bn_mlp", "digits"),
     ("deep_sigmoid_cnn", "deep_relu_bn_cnn", "shapes")],
)
def test_vanishing_gradients_at_init(broken: str, fixed: str, dataset: str) -> None:
    settings = TrainSettings(dataset=dataset, batch_size=32)
    bad = gradient_profile(get_preset(broken), settings)
    good = gradient_profile(get_preset(fixed), settings)
    assert bad["labels"] == good["labels"] == layer_labels(build_model(get_preset(broken)))
    assert bad["labels"][-1] == "head.fc"
    first, last = bad["grad_norm"][0], bad["grad_norm"][-1]
    assert first * 1000 <= last, f"sigmoid: first {first:.2e} vs last {last:.2e}"
    g = good["grad_norm"]
    assert all(v > 0 for v in g)
    assert max(g) / min(g) < 100, f"relu+bn spread {max(g) / min(g):.1f}x"


@pytest.mark.parametrize("preset", ["deep_sigmoid_mlp", "deep_relu_bn_mlp"])
def test_gradient_profile_matches_first_training_step(preset: str, digits: DataSplit) -> None:
    spec = get_preset(preset)
    settings = TrainSettings(dataset="digits", steps=1, eval_every=1, optimizer="sgd", lr=0.1)
    profile = gradient_profile(spec, settings, data=digits)
    records: list[dict] = []
    train(spec, settings, emit=records.extend, data=digits)
    assert series(records, "grad_norm_layer")[1] == pytest.approx(profile["grad_norm"], rel=1e-5)
    # plain SGD: the update is lr * g, so the update ratio is lr * ||g|| / ||w||. The sigmoid
    # net's first layers get updates below float32 resolution (~1e-9 on weights of ~0.06):
    # they are rounded away, and the measured ratio says so; compare where updates are real.
    expected = [0.1 * g / w for g, w in zip(profile["grad_norm"], profile["weight_norm"],
                                           strict=True)]
    got = series(records, "update_ratio_layer")[1]
    real = [i for i, e in enumerate(expected) if e > 1e-4]
    assert len(real) >= 2
    assert [got[i] for i in real] == pytest.approx([expected[i] for i in real], rel=1e-3)


def test_first_step_leaves_at_once_and_every_record_once(digits: DataSplit) -> None:
    """Step 1's loss and accuracy are emitted on their own, right after its forward pass, and
    the rest of step 1 in the next batch (a flush after step 1), long before ``flush_every``;
    later steps wait for the usual cadence; no record is emitted twice."""
    spec = get_preset("deep_sigmoid_mlp")
    steps = 30
    batches: list[list[dict]] = []
    result = train(spec, TrainSettings(dataset="digits", steps=steps, flush_every=1000,
                                       eval_every=1000, stats_every=0, seed=5),
                   emit=batches.append, data=digits)
    assert result.status == "finished"

    # the oracle: the same network and first batch in plain PyTorch
    torch.manual_seed(5)
    model = build_model(spec)
    model.train()
    idx = torch.randperm(digits.n_train, generator=torch.Generator().manual_seed(5))[:64]
    with torch.no_grad():
        logits = model(digits.train_x[idx])
    loss = float(nn.functional.cross_entropy(logits, digits.train_y[idx]))
    acc = float((logits.argmax(1) == digits.train_y[idx]).sum()) / 64

    assert [r["name"] for r in batches[0]] == ["layers", "activations"]
    assert [(r["step"], r["name"]) for r in batches[1]] == [(1, "loss"), (1, "acc")]
    assert batches[1][0]["value"] == pytest.approx(loss, rel=1e-6)
    assert batches[1][1]["value"] == acc
    rest_of_1 = {r["name"] for r in batches[2] if r["step"] == 1}
    assert {"lr", "grad_norm", "grad_norm_layer", "update_ratio_layer"} <= rest_of_1
    assert "loss" not in rest_of_1 and {r["step"] for r in batches[2]} == {1}
    assert len(batches) == 4  # then nothing until the end of the run (flush_every=1000)
    records = [r for b in batches for r in b]
    for name in ("loss", "acc", "lr", "grad_norm"):
        assert [r["step"] for r in records if r["name"] == name] == list(range(1, steps + 1))


@pytest.mark.parametrize("clip_norm", [None, 0.05])
def test_every_step_norms_match_a_plain_loop(digits: DataSplit, clip_norm: float | None) -> None:
    """Gradient norms (total, clipped, per layer) and update ratios of several Adam steps
    against a plain PyTorch loop that clones the weights around each ``optimizer.step()``.
    Batch norm adds parameters that count in the total norm but are not layers; 0.05 clips
    every step, so ``grad_norm_clipped`` differs from ``grad_norm``.

    The clipped run once drifted from the plain loop by 1.5e-4 after 7 steps: the trainer took
    the clipping norm from its padded row norms, ``clip_grad_norm_`` from per-tensor norms,
    equal up to float32 rounding (1e-7). Adam turns such last-bit differences into full-size
    steps wherever a gradient element is near zero (its update is about lr * sign), so the two
    weight trajectories really parted. The trainer now computes the clipping norm with
    ``clip_grad_norm_``'s own arithmetic and both runs follow one trajectory; what is left is
    the rounding of the recorded norms (about 2e-7), hence rel=1e-5, which still catches a
    drift."""
    spec = get_preset("deep_relu_bn_mlp")
    steps = 7  # odd and even steps: the weight copies alternate between two banks
    # Clipping scales by max_norm / ||g||, whose last float32 bits depend on how ||g|| is summed
    # (the trainer: row norms of one padded buffer; clip_grad_norm_: per-tensor norms). Adam
    # moves every weight by about lr whatever the gradient's size, so it grows that last-bit
    # difference into a 3e-3 gap between the two trajectories within 7 steps (seen on one
    # machine, not on another). SGD moves by lr * g: the trajectories stay a few ulps apart.
    optimizer, lr = ("adam", 1e-2) if clip_norm is None else ("sgd", 0.5)
    _, records = run(spec, digits, dataset="digits", optimizer=optimizer, lr=lr, steps=steps,
                     eval_every=steps, stats_every=0, seed=3, clip_norm=clip_norm)

    torch.manual_seed(3)
    model = build_model(spec)
    model.train()
    opt = build_optimizer(optimizer, model, lr=lr)
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    order = torch.randperm(digits.n_train, generator=torch.Generator().manual_seed(3))
    for step in range(1, steps + 1):
        idx = order[(step - 1) * 64:step * 64]
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(digits.train_x[idx]), digits.train_y[idx]).backward()
        layer_grads = [float(m.weight.grad.norm()) for m in layers]
        total = float(torch.linalg.vector_norm(torch.stack(
            [p.grad.norm() for p in model.parameters()])))
        if clip_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        clipped = float(torch.linalg.vector_norm(torch.stack(
            [p.grad.norm() for p in model.parameters()])))
        before = [m.weight.detach().clone() for m in layers]
        opt.step()
        after = [m.weight.detach() for m in layers]
        ratios = [float((a - b).norm() / b.norm()) for a, b in zip(after, before, strict=True)]
        assert series(records, "grad_norm")[step] == pytest.approx(total, rel=1e-5)
        assert series(records, "grad_norm_clipped")[step] == pytest.approx(clipped, rel=1e-5)
        assert series(records, "grad_norm_layer")[step] == pytest.approx(layer_grads, rel=1e-5)
        assert series(records, "update_ratio_layer")[step] == pytest.approx(ratios, rel=1e-3)
    if clip_norm is not None:
        assert all(v == pytest.approx(clip_norm, rel=1e-4)
                   for v in series(records, "grad_norm_clipped").values())


@pytest.mark.parametrize("chunk", [None, 7, 64])
def test_step_norms_buffer_layout(chunk: int | None) -> None:
    """The padded row layout of the per-step norms against per-tensor norms: rows that cut
    tensors anywhere (chunk 7), two dtypes (two buffers and tables), several updates (both
    banks), each step's row norms kept in its own table row until they are gathered."""
    from playground.instrument import StepNorms

    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(*s, generator=gen, dtype=d) for s, d in
              [((5, 3), torch.float32), ((5,), torch.float32), ((4, 3, 3, 3), torch.float64),
               ((2,), torch.float32), ((9, 5), torch.float32)]]
    weights = [params[0], params[2], params[4]]
    steps = 3
    norms = StepNorms(params, weights, steps, chunk=chunk)
    assert norms.start(weights).tolist() == pytest.approx([float(w.norm()) for w in weights])
    expected = []  # per step: (grad norms, weight norms, update norms)
    for step in range(1, steps + 1):
        grads = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]
        before = [w.clone() for w in weights]
        norms.grads(grads)
        for p, g in zip(params, grads, strict=True):  # the "update", after the copy
            p.add_(g, alpha=-0.1 * step)
        norms.weights(weights, step, step - 1)
        expected.append(([float(g.norm()) for g in grads], [float(w.norm()) for w in weights],
                         [float((w - b).norm()) for w, b in zip(weights, before, strict=True)]))
    rows = norms.gather(steps)
    assert rows.shape == (steps, norms.width) and rows.dtype == torch.float64
    sq = norms.tensor_norms(rows).sqrt()
    for step, (g, w, u) in enumerate(expected, start=1):
        got = sq[step - 1]
        assert [float(got[c]) for c in norms.grad_col] == pytest.approx(g)
        assert [float(got[c]) for c in norms.bank_col[step % 2]] == pytest.approx(w)
        assert [float(got[c]) for c in norms.bank_col[1 - step % 2]] == pytest.approx(u)


def test_gradient_profile_on_one_batch() -> None:
    spec = get_preset("mlp_points")
    x, y = torch.randn(16, 2), torch.randint(0, 2, (16,))
    profile = gradient_profile(spec, (x, y))
    assert profile["batch_size"] == 16 and profile["n_batches"] == 1
    assert len(profile["grad_norm"]) == len(profile["labels"]) == 4
    assert math.isfinite(profile["loss"])


# -- divergence, stopping, failure -----------------------------------------------------------------


def test_high_lr_diverges_and_clipping_saves_it(digits: DataSplit) -> None:
    spec = relu_mlp()
    result, records = run(spec, digits, dataset="digits", optimizer="sgd", lr=50.0, steps=60,
                          eval_every=20)
    assert result.status == "diverged"
    assert result.message.startswith("diverged at step ")
    assert "lower the learning rate" in result.message
    bad = int(result.message.split()[3].rstrip(":"))
    assert 1 < bad <= 60
    loss = series(records, "loss")
    assert sorted(loss) == list(range(1, bad))  # every step before the divergence, none after
    assert sorted(series(records, "grad_norm_layer")) == list(range(1, bad))
    assert result.summary["steps_done"] == bad - 1
    json.dumps(records, allow_nan=False)  # nothing non-finite reaches the store

    clipped, records = run(spec, digits, dataset="digits", optimizer="sgd", lr=50.0, steps=60,
                           eval_every=20, clip_norm=1.0)
    assert clipped.status == "finished", clipped.message
    after = series(records, "grad_norm_clipped")
    assert all(v <= 1.0 + 1e-4 for v in after.values())
    before = series(records, "grad_norm")
    assert any(before[s] > 1.0 for s in before)


def test_finite_but_exploding_loss_diverges_by_loss_growth() -> None:
    # SGD at lr=1e9 on small_cnn: batch norm keeps every value finite while the loss sits near
    # 1e8 at chance accuracy; before the growth rule this run "finished"
    spec = get_preset("small_cnn", input=InputSpec(channels=3, height=16, width=16))
    data = load_dataset("shapes", input_shape=(3, 16, 16), n_train=256, n_val=64)
    result, records = run(spec, data, dataset="shapes", optimizer="sgd", lr=1e9, steps=60,
                          batch_size=32, eval_every=2, stats_every=0)
    assert result.status == "diverged", result.message
    assert result.summary["diverged_rule"] == "loss_growth"
    loss = series(records, "loss")
    start, end = loss[1], result.summary["steps_done"]
    assert sorted(loss) == list(range(1, end + 1))  # every finite step is kept
    # the trainer flushes after step 1, then at each evaluation (every 2 steps); flush (1)
    # holds the start itself, so the first three flushes entirely above 100x the start are
    # (2), (3, 4) and (5, 6): the rule fires at step 6 at the earliest
    assert end >= 6 and all(loss[s] > 100 * start for s in range(end - 4, end + 1))
    assert result.message == (
        f"diverged at step {end}: the loss stayed above 100x its starting value "
        f"({start:.3g} -> {loss[end]:.3g}) for 3 checks — the updates are too large; lower "
        "the learning rate, clip gradients, or add normalisation")
    assert result.summary["final_loss"] == loss[end]
    json.dumps(records, allow_nan=False)


def test_loss_growth_rule_on_reasoned_cases() -> None:
    def fire(*flushes: list[float]) -> list[str | None]:
        rule = LossGrowth()
        return [rule.check(losses, step) for step, losses in enumerate(flushes, 1)]

    assert fire([2.3, 2.2], [1.9], [1.2], [0.4]) == [None] * 4  # an ordinary run
    assert fire([2.3], [300.0], [400.0], [500.0])[-1] is not None  # 3 flushes above 230
    assert fire([2.3], [300.0], [400.0], [500.0])[:3] == [None] * 3
    # a spike inside a flush, or two flushes above, then one below: the count starts again
    assert fire([2.3], [2.0, 1e6, 2.0], [2.0, 1e9], [1e3, 1.0], [1e3]) == [None] * 5
    assert fire([2.3], [1e3], [1e3], [2.0], [1e3], [1e3]) == [None] * 6
    # the start is step 1's loss, not a later (already exploded) one; a tiny start is floored
    assert fire([2.3, 4e16, 1e8], [1e8], [1e8], [1e8])[-1] is not None
    assert fire([1e-4], [5.0], [5.0], [5.0]) == [None] * 4  # 100 x 0.1 = 10 > 5
    assert fire([], [2.3], [], [300.0], [300.0], [300.0])[-1] is not None  # empty flushes


@pytest.mark.slow
def test_no_preset_trips_the_growth_rule_in_a_normal_run() -> None:
    """Every preset that may be trained here, on its own data set with the default optimiser,
    stays far below the growth threshold: its loss is checked at every step (an evaluation
    flushes each one), and with batches of 4 the per-step loss is noisier than usual."""
    from playground.jobs import count_params
    from playground.presets import list_presets
    from playground.settings import get_settings
    from playground.targets import fit_to_dataset

    limit = get_settings().max_params
    trained, too_big = [], []
    for preset in list_presets():
        spec, _ = fit_to_dataset(preset.spec(), preset.dataset)
        if count_params(spec) > limit:  # refused before any step: nothing to check
            too_big.append(preset.name)
            continue
        result, records = run(spec, dataset=preset.dataset, steps=8, batch_size=4,
                              n_train=32, n_val=10, eval_every=1, stats_every=0)
        assert result.status == "finished", (preset.name, result.message)
        loss = series(records, "loss")
        worst = max(loss.values()) / max(loss[1], MIN_START_LOSS)
        assert worst < GROWTH_FACTOR / 10, (preset.name, worst)  # a wide margin
        trained.append(preset.name)
    assert {"small_cnn", "mlp_points", "lenet5", "resnet20_cifar"} <= set(trained)
    assert all(name.startswith(("vgg", "resnet152")) for name in too_big), too_big


def test_should_stop_stops(points_spec: NetworkSpec, spirals: DataSplit) -> None:
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 7

    records: list[dict] = []
    result = train(points_spec, TrainSettings(dataset="spirals", steps=100, batch_size=32),
                   emit=records.extend, should_stop=should_stop, data=spirals)
    assert result.status == "stopped"
    assert result.message == "stopped at step 7 on request"
    assert result.summary["steps_done"] == 7
    assert sorted(series(records, "loss")) == list(range(1, 8))
    assert 7 in series(records, "val_acc")  # a last evaluation for the summary
    assert result.summary["final_val_acc"] is not None


def test_exception_in_loop_fails_and_keeps_metrics(points_spec: NetworkSpec,
                                                   spirals: DataSplit) -> None:
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        if calls["n"] == 6:
            raise RuntimeError("the store went away\nsecond line")
        return False

    records: list[dict] = []
    result = train(points_spec, TrainSettings(dataset="spirals", steps=50, batch_size=32),
                   emit=records.extend, should_stop=should_stop, data=spirals)
    assert result.status == "failed"
    assert result.message == "failed at step 6: RuntimeError: the store went away"
    assert sorted(series(records, "loss")) == [1, 2, 3, 4, 5]


def test_out_of_memory_is_reported_plainly(points_spec: NetworkSpec, spirals: DataSplit) -> None:
    def should_stop() -> bool:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    records: list[dict] = []
    result = train(points_spec, TrainSettings(dataset="spirals", steps=5, batch_size=32),
                   emit=records.extend, should_stop=should_stop, data=spirals)
    assert result.status == "failed"
    assert result.message == ("out of memory on cpu: lower the batch size or use a smaller "
                              "model")


def test_early_stopping(points_spec: NetworkSpec, spirals: DataSplit) -> None:
    # lr so small that float32 weights cannot move: the validation loss never improves
    result, records = run(points_spec, spirals, dataset="spirals", lr=1e-12, steps=100,
                          eval_every=5, early_stopping_patience=2, batch_size=32)
    assert result.status == "early_stopped"
    assert result.summary["steps_done"] == 15  # evals at 5 (best), 10 and 15 (no better)
    assert sorted(series(records, "val_loss")) == [5, 10, 15]
    assert "has not improved for 2 evaluations" in result.message
    assert set(STATUSES) == {"finished", "early_stopped", "stopped", "diverged", "failed"}


# -- the record contract ----------------------------------------------------------------------


def test_records_contract(digits: DataSplit) -> None:
    spec = get_preset("deep_sigmoid_mlp")
    result, records = run(spec, digits, dataset="digits", steps=30, eval_every=10,
                          stats_every=10, flush_every=7)
    assert result.status == "finished"
    json.dumps(records, allow_nan=False)
    model = build_model(spec)
    layer_names = labels(records, "layers")
    act_names = labels(records, "activations")
    assert layer_names == layer_labels(model) == [n for n, m in model.named_modules()
                                                  if isinstance(m, nn.Linear)]
    assert layer_names[0] == "stage1.layer1.fc" and layer_names[-1] == "head.fc"
    assert act_names == activation_labels(model)
    assert act_names[0] == "stage1.layer1.act" and len(act_names) == 10
    assert {r["name"] for r in records} == set(SERIES)
    for rec in records:
        info = SERIES[rec["name"]]
        assert isinstance(rec["step"], int)
        if info.kind == "scalar":
            assert set(rec) == {"step", "name", "value"} and isinstance(rec["value"], float)
        elif info.kind == "vector":
            assert set(rec) == {"step", "name", "values"}
            want = layer_names if info.labels == "layers" else act_names
            assert len(rec["values"]) == len(want)
            assert all(isinstance(v, float) for v in rec["values"])
    for name in ("loss", "acc", "lr", "grad_norm", "grad_norm_clipped", "grad_norm_layer",
                 "update_ratio_layer"):
        assert sorted(series(records, name)) == list(range(1, 31)), name
    for name in ("act_mean", "act_std", "act_dead", "act_saturated"):
        assert sorted(series(records, name)) == [0, 10, 20], name
    assert sorted(series(records, "val_acc")) == [10, 20, 30]
    assert all(0.0 <= v <= 1.0 for v in series(records, "acc").values())
    assert series(records, "grad_norm") == series(records, "grad_norm_clipped")  # no clipping


def test_same_seed_same_numbers(points_spec: NetworkSpec, spirals: DataSplit) -> None:
    kw = dict(dataset="spirals", steps=40, batch_size=32, eval_every=20, augment=False)
    _, a = run(points_spec, spirals, seed=3, **kw)
    _, b = run(points_spec, spirals, seed=3, **kw)
    _, c = run(points_spec, spirals, seed=4, **kw)
    assert series(a, "loss") == series(b, "loss")
    assert series(a, "grad_norm_layer") == series(b, "grad_norm_layer")
    assert series(a, "val_loss") == series(b, "val_loss")
    assert series(a, "loss") != series(c, "loss")


def tanh_mlp() -> NetworkSpec:
    """Tanh with N(0, 0.5^2) weights: large enough that many units sit in the flat ends."""
    return relu_mlp().model_copy(update={"defaults": Defaults(
        activation="tanh", norm="none", init="normal", init_std=0.5)})


@pytest.mark.parametrize("preset", ["deep_sigmoid_mlp", "deep_relu_bn_mlp", "tanh_mlp",
                                    "deep_residual_sigmoid_cnn", "resnet20_cifar"])
def test_activation_stats_match_a_direct_forward(digits: DataSplit, preset: str) -> None:
    """Statistics at step 0 against a plain forward pass of the same first batch, with
    ``torch.std_mean`` and the definitions of dead and saturated units written out; the
    residual nets check that no activation output is changed in place after its hook."""
    spec = tanh_mlp() if preset == "tanh_mlp" else get_preset(preset)
    if spec.input.channels == 3:
        data = load_dataset("shapes", input_shape=spec.input.shape, n_train=128, n_val=64)
        dataset = "shapes"
    else:
        data, dataset = digits, "digits"
    _, records = run(spec, data, dataset=dataset, steps=1, eval_every=1, seed=5)
    # the first batch as train() draws it: randperm from a generator seeded with `seed`
    order = torch.randperm(data.n_train, generator=torch.Generator().manual_seed(5))
    xb = data.train_x[order[:64]].reshape(64, *spec.input.shape)
    torch.manual_seed(5)
    model = build_model(spec)
    model.train()
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str, store: dict[str, torch.Tensor]):
        return lambda mod, args, out: store.__setitem__(name, out.detach().clone())

    for name, mod in model.named_modules():
        if name in activation_labels(model):
            mod.register_forward_hook(keep(name, seen))
    model(xb)
    names = labels(records, "activations")
    assert len(names) >= 3
    outs = [seen[n] for n in names]
    std_mean = [torch.std_mean(o, correction=0) for o in outs]
    assert series(records, "act_mean")[0] == pytest.approx([float(m) for _, m in std_mean],
                                                           rel=1e-4, abs=1e-6)
    assert series(records, "act_std")[0] == pytest.approx([float(s) for s, _ in std_mean],
                                                          rel=1e-4, abs=1e-6)
    dead = [float((o == 0).all(dim=0).float().mean()) for o in outs]
    if "sigmoid" in preset:
        sat = [float(((o < 0.03) | (o > 0.97)).float().mean()) for o in outs]
    else:
        sat = [float((o.abs() > 0.97).float().mean()) for o in outs]
    if "relu" in preset or "resnet" in preset:
        assert series(records, "act_dead")[0] == pytest.approx(dead)
        assert series(records, "act_saturated")[0] == [0.0] * len(names)
    else:
        assert series(records, "act_saturated")[0] == pytest.approx(sat)
        assert series(records, "act_dead")[0] == [0.0] * len(names)
    if preset == "tanh_mlp":
        assert max(sat) > 0  # the check has something to compare


def test_activation_changed_in_place_later_is_left_out() -> None:
    """A hook keeps a reference, not a copy: an output that a later in-place op changes (its
    version counter moves) must be left out, not reported with the changed values."""
    from playground.instrument import ActivationStats

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.act1 = nn.Sigmoid()
            self.act2 = nn.Sigmoid()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = self.act1(self.fc(x))
            b = self.act2(self.fc(x))
            b.mul_(2.0)  # changes act2's output after its hook ran
            return a + b

    net = Net()
    stats = ActivationStats([("act1", net.act1), ("act2", net.act2)])
    stats.attach()
    x = torch.randn(8, 4)
    net(x)
    groups = stats.detach()
    assert [i for g in groups for i in g.index] == [0]
    with torch.no_grad():
        expected = float(torch.sigmoid(net.fc(x)).mean())
    assert float(groups[0].mean[0]) == pytest.approx(expected)
    assert stats.handles == [] and stats.detach() is None


# -- optimisers and schedules ------------------------------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_trains(name: str, points_spec: NetworkSpec, spirals: DataSplit) -> None:
    entry = OPTIMIZERS.get(name)
    assert entry.default_lr > 0
    result, records = run(points_spec, spirals, dataset="spirals", optimizer=name,
                          lr=entry.default_lr, steps=20, batch_size=32, eval_every=20)
    assert result.status == "finished", result.message
    assert set(series(records, "lr").values()) == {entry.default_lr}
    assert all(max(v) > 0 for v in series(records, "update_ratio_layer").values())


def test_optimizer_registry_defaults() -> None:
    assert OPTIMIZERS.names() == ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop",
                                  "adagrad"]
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    opt = build_optimizer("nesterov", model)
    assert opt.defaults["momentum"] == 0.9 and opt.defaults["nesterov"] is True
    assert build_optimizer("momentum", model).defaults["momentum"] == 0.9
    adamw = build_optimizer("adamw", model)
    # decay only on matrices, not on biases or norm scales (nanoGPT's rule)
    assert [g["weight_decay"] for g in adamw.param_groups] == [0.01, 0.0]
    assert sum(len(g["params"]) for g in adamw.param_groups) == 6
    assert build_optimizer("adam", model, momentum=0.5).defaults["betas"] == (0.5, 0.999)


def _torch_lrs(scheduler_cls, total: int, lr: float, **kw) -> list[float]:
    """The lr of each of ``total`` updates under one of PyTorch's own schedulers."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    sched = scheduler_cls(opt, **kw)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_every_schedule_follows_its_formula(name: str, points_spec: NetworkSpec,
                                            spirals: DataSplit) -> None:
    T, lr = 20, 0.1
    params = {"step": {"step_size": 6, "gamma": 0.5}, "exponential": {"gamma": 0.9},
              "warmup_cosine": {"warmup_steps": 4}}.get(name, {})
    result, records = run(points_spec, spirals, dataset="spirals", optimizer="sgd", lr=lr,
                          steps=T, batch_size=32, eval_every=T, schedule=name,
                          schedule_params=params)
    assert result.status == "finished"
    got = [v for _, v in sorted(series(records, "lr").items())]
    if name == "constant":
        want = [lr] * T
    elif name == "step":
        want = _torch_lrs(torch.optim.lr_scheduler.StepLR, T, lr, step_size=6, gamma=0.5)
    elif name == "exponential":
        want = _torch_lrs(torch.optim.lr_scheduler.ExponentialLR, T, lr, gamma=0.9)
    elif name == "cosine":
        want = _torch_lrs(torch.optim.lr_scheduler.CosineAnnealingLR, T, lr, T_max=T)
        assert got[T // 2] == pytest.approx(lr / 2)  # update T/2 + 1: half-way, lr / 2
    else:
        W = 4
        want = [lr * (t + 1) / W if t < W else
                lr * 0.5 * (1 + math.cos(math.pi * (t - W) / (T - W))) for t in range(T)]
        assert got[W] == pytest.approx(lr)  # the peak right after the warm-up
    assert got == pytest.approx(want, rel=1e-6)


def test_schedule_params_are_checked() -> None:
    with pytest.raises(ConfigError, match="no parameter 'gamma'"):
        settings_from_dict({"schedule": "cosine", "schedule_params": {"gamma": 0.5}})
    with pytest.raises(ConfigError, match="gamma must be in"):
        settings_from_dict({"schedule": "step", "schedule_params": {"gamma": 2.0}})
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_schedule("warmup_cosine", opt, 10, {"warmup_steps": 0})
    assert opt.param_groups[0]["lr"] == 1.0  # no warm-up: the cosine starts at once
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * (1 + math.cos(math.pi / 10)))


# -- settings -----------------------------------------------------------------------------------


def test_settings_round_trip_and_defaults() -> None:
    s = TrainSettings(optimizer="adamw", schedule="step", schedule_params={"gamma": 0.5},
                      clip_norm=1.0, amp="bf16", epochs=2)
    assert settings_from_json(s.to_json()) == s
    assert settings_from_dict(json.loads(json.dumps(s.to_dict()))) == s
    d = TrainSettings()
    assert (d.dataset, d.optimizer, d.lr, d.schedule, d.batch_size, d.steps, d.eval_every,
            d.stats_every, d.amp, d.device, d.seed) == (
        "shapes", "adam", 1e-3, "constant", 64, 300, 25, 25, "off", "auto", 0)
    with pytest.raises(Exception):  # noqa: B017 - frozen
        d.lr = 0.1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"lr": "fast"}, "lr must be a number; got 'fast'"),
        ({"lr": -1}, "lr must be a positive number"),
        ({"steps": 1.5}, "steps must be a whole number"),
        ({"optimizer": "adamm"}, "unknown optimiser 'adamm'; choose one of: sgd"),
        ({"dataset": "imagenet"}, "unknown data set 'imagenet'"),
        ({"schedule": "linear"}, "unknown schedule 'linear'"),
        ({"amp": "fp8"}, "amp must be one of 'off', 'bf16' or 'fp16'"),
        ({"learning_rate": 0.1}, "learning_rate is not a training setting"),
        ({"device": "tpu"}, "device must be auto, cpu, cuda, cuda:N or mps"),
        ({"clip_norm": 0}, "clip_norm must be positive"),
        ([1, 2], "must be a mapping"),
    ],
)
def test_settings_errors_are_plain(data, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        settings_from_dict(data)


def test_bad_json_settings() -> None:
    with pytest.raises(ConfigError, match="not valid JSON"):
        settings_from_json("{lr: 1")


def test_data_that_does_not_fit_the_network(spirals: DataSplit) -> None:
    with pytest.raises(PlaygroundError, match=r"gives inputs of shape 2, but the network "
                                              r"expects 3x32x32; set the input to channels=2"):
        run(get_preset("small_cnn"), spirals, dataset="spirals")
    few = get_preset("mlp_points").model_copy(update={"num_classes": 1})
    with pytest.raises(PlaygroundError, match="has 2 classes but the network has only 1"):
        run(few, spirals, dataset="spirals")
    with pytest.raises(PlaygroundError, match="batch_size 512 is larger"):
        run(get_preset("mlp_points"), spirals, dataset="spirals", batch_size=512)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_but_missing(spirals: DataSplit) -> None:
    with pytest.raises(PlaygroundError, match="CUDA is not available"):
        run(get_preset("mlp_points"), spirals, dataset="spirals", device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_cuda_run_matches_cpu_and_syncs_only_at_flushes(digits: DataSplit, amp: str) -> None:
    """On a GPU: the same numbers as on the CPU (float32), AMP runs that learn, and no host
    synchronisation per step. CUDA's sync debug mode warns at every synchronising call (any
    blocking copy between host and device included); ``should_stop``, called once before each
    step, marks how many warnings came before it, so set-up is not counted. Between the first
    and the last step, 40 steps may only sync at a flush and at a new epoch's batch order (a
    few calls each), never once a step. fp16's GradScaler checks for inf on the host every
    step, as PyTorch implements it, so it is exempt."""
    import warnings

    spec = get_preset("deep_relu_bn_mlp")
    kw = dict(dataset="digits", optimizer="adam", lr=1e-3, steps=40, eval_every=40,
              flush_every=20, stats_every=20, seed=1)
    records: list[dict] = []
    marks: list[int] = []
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = train(spec, TrainSettings(device="cuda", amp=amp, **kw),
                           emit=records.extend, data=digits,
                           should_stop=lambda: marks.append(len(caught)) or False)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert result.status == "finished", result.message
    assert result.summary["device"].startswith("cuda") and result.summary["amp"] == amp
    assert len(marks) == 40
    in_loop = [w for w in caught[marks[0]:marks[-1]] if "synchroniz" in str(w.message).lower()]
    if amp != "fp16":
        assert len(in_loop) < 20, f"{len(in_loop)} host syncs in 39 steps: {in_loop[:3]}"
    loss = series(records, "loss")
    assert sum(loss[s] for s in range(31, 41)) < sum(loss[s] for s in range(1, 11))
    if amp == "off":
        _, cpu = run(spec, digits, device="cpu", **kw)
        for name in ("loss", "grad_norm", "grad_norm_layer", "update_ratio_layer"):
            a, b = series(records, name), series(cpu, name)
            assert sorted(a) == sorted(b) == list(range(1, 41))
            assert a[1] == pytest.approx(b[1], rel=1e-3, abs=1e-6)


def test_epochs_accumulate_amp_augment_and_smoothing(digits: DataSplit) -> None:
    spec = get_preset("deep_relu_bn_mlp")
    result, records = run(spec, digits, dataset="digits", epochs=1, batch_size=64,
                          accumulate=2, amp="bf16", augment=True, label_smoothing=0.1,
                          clip_value=0.01, weight_decay=1e-4, eval_every=100)
    assert result.status == "finished", result.message
    assert result.summary["total_steps"] == math.ceil(digits.n_train / 128)
    assert any("only on CUDA" in n for n in result.summary["notes"])
    assert result.summary["amp"] == "off"
    clipped = series(records, "grad_norm_clipped")
    raw = series(records, "grad_norm")
    assert all(clipped[s] <= raw[s] + 1e-6 for s in raw)
    json.dumps(result.to_dict(), allow_nan=False)


def test_augment_on_points_is_a_note(points_spec: NetworkSpec, spirals: DataSplit) -> None:
    result, _ = run(points_spec, spirals, dataset="spirals", augment=True, steps=3,
                    batch_size=32)
    assert result.status == "finished"
    assert any("images only" in n for n in result.summary["notes"])


def test_parameter_limit(points_spec: NetworkSpec, spirals: DataSplit,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_MAX_PARAMS", "100")
    with pytest.raises(ConfigError, match=r"has 626 parameters; the limit here is 100"):
        run(points_spec, spirals, dataset="spirals")
    monkeypatch.setenv("PLAYGROUND_MAX_STEPS", "10")
    monkeypatch.setenv("PLAYGROUND_MAX_PARAMS", "1000")
    with pytest.raises(ConfigError, match="more than the limit of 10"):
        run(points_spec, spirals, dataset="spirals", steps=11)


def test_records_leave_in_batches(points_spec: NetworkSpec, spirals: DataSplit) -> None:
    batches: list[list[dict]] = []
    result = train(points_spec, TrainSettings(dataset="spirals", steps=300, batch_size=32,
                                              eval_every=300, flush_every=1000),
                   emit=batches.append, data=spirals)
    assert result.status == "finished"
    assert [r["name"] for r in batches[0]] == ["layers", "activations"]
    per_batch = [{r["step"] for r in b if r["name"] == "loss"} for b in batches[1:]]
    assert all(len(steps) <= 256 for steps in per_batch)  # the device table's rows
    assert sorted(s for steps in per_batch for s in steps) == list(range(1, 301))
