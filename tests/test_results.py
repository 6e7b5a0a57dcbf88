"""Tests of playground.results: what a trained network learned, as plain data.

Oracles, not echoes: the accuracy and loss against ``playground.train._evaluate`` and the
validation accuracy ``train()`` recorded for its kept weights; the confusion matrix against
scikit-learn's ``confusion_matrix``; feature maps against torchvision's
``create_feature_extractor`` and direct calls of the submodules; saliency against a direct
``torch.autograd.grad``; the decision boundary against the network evaluated at hand-made
points; uploads against images whose expected values are known (solid colours, the validation
images themselves), all generated here with Pillow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import confusion_matrix
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from playground.build import build_model
from playground.data import denormalize, load_dataset
from playground.errors import PlaygroundError
from playground.presets import get_preset
from playground.results import (
    ResultsError,
    UploadError,
    ValidationData,
    decision_boundary,
    evaluate,
    feature_maps,
    first_layer_filters,
    predict_one,
    prediction_grid,
    prepare_upload,
    saliency,
    validation_data,
)
from playground.spec import Defaults, HeadSpec, InputSpec, NetworkSpec, PoolSpec, StageSpec
from playground.train import TrainSettings, _evaluate, train

IMG = (3, 16, 16)
SETTINGS = TrainSettings(dataset="shapes", n_train=256, n_val=100, batch_size=32, steps=30,
                         eval_every=30, stats_every=0, lr=3e-3, device="cpu")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: predictable on a shared 2-core machine (as tests/test_train.py)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cnn(norm: str = "batch", channels: int = 3, num_classes: int = 10) -> NetworkSpec:
    """A narrow two-stage CNN for 16x16 inputs (fast on a CPU)."""
    pool = PoolSpec(kind="max", kernel=2)
    return NetworkSpec(
        input=InputSpec(channels=channels, height=16, width=16),
        num_classes=num_classes,
        stages=(StageSpec(block="conv", depth=1, width=8, pool=pool),
                StageSpec(block="conv", depth=1, width=16, pool=pool)),
        defaults=Defaults(activation="relu", norm=norm),
        head=HeadSpec(pool="avg"),
    )


def fit(model: nn.Module, data: ValidationData, steps: int = 30) -> nn.Module:
    """A few Adam steps on the validation data itself: predictions become non-trivial."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        idx = torch.arange(step * 32, step * 32 + 32) % data.n
        loss = nn.functional.cross_entropy(model(data.x[idx]), data.y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    return model.eval()


@pytest.fixture(scope="module")
def shapes() -> ValidationData:
    return validation_data(cnn(), SETTINGS)


@pytest.fixture(scope="module")
def trained(shapes: ValidationData) -> nn.Module:
    torch.manual_seed(1)
    return fit(build_model(cnn()), shapes)


def no_grads(model: nn.Module) -> bool:
    return all(p.grad is None for p in model.parameters())


# -- data --------------------------------------------------------------------------------------
def test_validation_data_is_the_split_training_evaluates(shapes: ValidationData):
    split = load_dataset("shapes", seed=0, input_shape=IMG, n_train=256, n_val=100)
    assert torch.equal(shapes.x, split.val_x) and torch.equal(shapes.y, split.val_y)
    assert shapes.classes == split.classes and shapes.kind == "image"
    assert (shapes.mean, shapes.std, shapes.input_shape) == (split.mean, split.std, IMG)
    idx = [3, 0, 57]
    expected = denormalize(split.val_x[idx], split).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(shapes.images(idx), expected, atol=1e-6)
    with pytest.raises(ResultsError):
        shapes.points()

    points = validation_data(get_preset("mlp_points"), TrainSettings(dataset="spirals",
                                                                     n_train=64, n_val=50))
    ref = load_dataset("spirals", n_train=64, n_val=50)
    assert points.kind == "points" and points.x.shape == (50, 2, 1, 1)  # the preset's (2, 1, 1)
    assert np.array_equal(points.points(), ref.val_x.numpy())
    assert torch.equal(points.y, ref.val_y)


def test_accuracy_equals_what_train_recorded_for_its_weights():
    """End to end: the weights train() kept, evaluated here, give the val_acc it measured."""
    spec = cnn()
    result = train(spec, SETTINGS, emit=lambda _records: None, keep_weights_bytes=10**8)
    kept = result.weights["final"]
    model = build_model(spec)
    model.load_state_dict(kept.state)
    got = evaluate(model, validation_data(spec, SETTINGS))
    assert got.accuracy == kept.val_acc == result.summary["final_val_acc"]
    assert 0.1 < got.accuracy < 1.0  # it learned something, and some examples are wrong


# -- evaluation --------------------------------------------------------------------------------
def test_evaluate_matches_train_and_sklearn(shapes: ValidationData, trained: nn.Module):
    trained.train()
    bn = trained.stage1.layer1.norm
    running = bn.running_mean.clone()
    res = evaluate(trained, shapes)
    assert trained.training and bn.training  # mode put back
    assert torch.equal(bn.running_mean, running)  # eval mode: running stats untouched

    loss, acc = _evaluate(trained, shapes.x, shapes.y, contextlib.nullcontext)
    assert res.accuracy == acc and res.loss == loss
    assert 0.0 < res.accuracy < 1.0

    trained.eval()
    with torch.no_grad():
        logits = trained(shapes.x)
    pred = logits.argmax(1).numpy()
    true = shapes.y.numpy()
    assert np.array_equal(res.pred, pred) and np.array_equal(res.true, true)
    np.testing.assert_allclose(res.confidence, logits.softmax(1).max(1).values.numpy(),
                               rtol=1e-6)
    expected = confusion_matrix(true, pred, labels=list(range(10)))
    assert np.array_equal(res.confusion, expected)
    assert res.confusion.sum() == shapes.n == res.n
    assert np.trace(res.confusion) / shapes.n == res.accuracy
    for i, name in enumerate(shapes.classes):
        mask = true == i
        assert res.per_class[name] == pytest.approx((pred[mask] == i).mean())
    np.testing.assert_allclose(res.confusion_norm.sum(1), 1.0)
    assert res.labels == shapes.classes
    assert no_grads(trained)


def test_extra_outputs_and_an_empty_class(shapes: ValidationData):
    torch.manual_seed(2)
    model = build_model(cnn(num_classes=12)).eval()
    keep = shapes.y != 3
    data = dataclasses.replace(shapes, x=shapes.x[keep], y=shapes.y[keep])
    res = evaluate(model, data)
    assert res.confusion.shape == (10, 12)
    assert res.labels[:10] == shapes.classes and res.labels[10:] == ["output 10", "output 11"]
    with torch.no_grad():
        pred = model(data.x).argmax(1).numpy()
    full = confusion_matrix(data.y.numpy(), pred, labels=list(range(12)))
    assert np.array_equal(res.confusion, full[:10])  # rows 10, 11: no example is of that class
    assert res.per_class[shapes.classes[3]] is None
    assert not res.confusion_norm[3].any()
    assert res.confusion.sum() == data.n
    assert res.to_dict()["per_class"][shapes.classes[3]] is None


def test_prediction_grid_puts_confident_mistakes_first(shapes: ValidationData,
                                                       trained: nn.Module):
    res = evaluate(trained, shapes)
    wrong = res.pred != res.true
    n = int(wrong.sum()) + 10
    assert 0 < n - 10 < res.n - 10
    items = prediction_grid(res, shapes, n=n)
    expected = sorted(range(res.n), key=lambda i: (not wrong[i], -res.confidence[i], i))[:n]
    assert [it.index for it in items] == expected
    assert [it.correct for it in items] == [False] * (n - 10) + [True] * 10
    first = items[0]
    assert not first.correct and first.true_label == shapes.classes[res.true[first.index]]
    assert first.pred_label == shapes.classes[res.pred[first.index]]
    np.testing.assert_array_equal(first.image, shapes.images([first.index])[0])
    assert len(prediction_grid(res, shapes, n=5)) == 5
    assert len(prediction_grid(res, shapes, n=10_000)) == res.n


# -- decision boundary -------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 1, 1), (1, 1, 2)])
def test_decision_boundary_matches_the_network_at_grid_points(shape):
    spec = NetworkSpec(
        input=InputSpec(channels=shape[0], height=shape[1], width=shape[2]),
        num_classes=2, stages=(StageSpec(block="linear", depth=2, width=16),),
        defaults=Defaults(activation="tanh", norm="none"), head=HeadSpec(pool="flatten"),
    )
    data = validation_data(spec, TrainSettings(dataset="moons", n_train=64, n_val=120))
    torch.manual_seed(0)
    model = fit(build_model(spec), data, steps=40)
    b = decision_boundary(model, data, resolution=41)
    assert b.pred.shape == b.prob.shape == (41, 41)
    pts = data.points()
    assert b.xs[0] < pts[:, 0].min() and b.xs[-1] > pts[:, 0].max()
    assert b.ys[0] < pts[:, 1].min() and b.ys[-1] > pts[:, 1].max()
    assert np.array_equal(b.points, pts) and np.array_equal(b.y, data.y.numpy())
    # row i is y = ys[i], column j is x = xs[j]; the network reads (x, y) in data order
    cells = [(i, j) for i in range(0, 41, 5) for j in range(0, 41, 4)]
    xy = torch.tensor([[b.xs[j], b.ys[i]] for i, j in cells]).reshape(-1, *shape)
    with torch.no_grad():
        p = model(xy).softmax(1)
    assert [int(b.pred[i, j]) for i, j in cells] == p.argmax(1).tolist()
    np.testing.assert_allclose([b.prob[i, j] for i, j in cells], p.max(1).values, rtol=1e-5)
    assert len(set(b.pred.ravel().tolist())) == 2  # a real boundary crosses the plane
    assert b.labels == data.classes


def test_decision_boundary_refuses_images_and_bad_resolutions(shapes, trained):
    with pytest.raises(ResultsError, match="2-D point set"):
        decision_boundary(trained, shapes)
    data = validation_data(get_preset("mlp_points"), TrainSettings(dataset="xor", n_train=32,
                                                                   n_val=20))
    model = build_model(get_preset("mlp_points"))
    for res in (1, 10_000):
        with pytest.raises(ResultsError, match="resolution"):
            decision_boundary(model, data, resolution=res)


# -- filters and feature maps ------------------------------------------------------------------
def test_first_layer_filters(trained: nn.Module):
    f = first_layer_filters(trained)
    w = trained.stage1.layer1.conv.weight.detach().numpy()
    assert f is not None and f.name == "stage1.layer1.conv" and f.rgb
    assert np.array_equal(f.weight, w) and f.images.shape == (8, 3, 3, 3)
    for k in range(8):
        img = w[k].transpose(1, 2, 0)  # (kh, kw, RGB)
        np.testing.assert_allclose(f.images[k], (img - img.min()) / (img.max() - img.min()),
                                   atol=1e-6)

    torch.manual_seed(0)
    grey = build_model(cnn(channels=1))
    with torch.no_grad():
        grey.stage1.layer1.conv.weight[1] = 0.25  # a constant filter
    g = first_layer_filters(grey)
    wg = grey.stage1.layer1.conv.weight.detach().numpy()[:, 0]
    assert g is not None and not g.rgb and g.images.shape == (8, 3, 3)
    np.testing.assert_allclose(g.images[0], (wg[0] - wg[0].min()) / np.ptp(wg[0]), atol=1e-6)
    assert np.all(g.images[1] == 0.5)
    assert first_layer_filters(build_model(get_preset("mlp_points"))) is None


def test_feature_maps_equal_torchvision_feature_extractor(shapes, trained):
    convs = [n for n, m in trained.named_modules() if isinstance(m, nn.Conv2d)]
    maps = feature_maps(trained, shapes.x[5])
    assert [m.name for m in maps] == convs and all(m.kind == "Conv2d" for m in maps)
    extractor = create_feature_extractor(trained.eval(), return_nodes=convs)
    with torch.no_grad():
        ref = extractor(shapes.x[5:6])
    for m in maps:
        np.testing.assert_array_equal(m.maps, ref[m.name][0].numpy())
    assert maps[0].maps.shape == (8, 16, 16) and maps[1].maps.shape == (16, 8, 8)


def test_feature_maps_survive_in_place_activations(shapes):
    """No norm: ReLU(inplace) runs on the conv's own output, so the hook must copy it."""
    torch.manual_seed(3)
    model = build_model(cnn(norm="none"))
    model.train()
    x = shapes.x[7:8]
    with torch.no_grad():
        conv1 = model.stage1.layer1.conv(x)[0]
        block1 = model.stage1.layer1(x)[0]
        logits = model(x)[0]
    assert (conv1 < 0).any()  # a ReLU would have changed it
    maps = {m.name: m.maps for m in feature_maps(model, x[0])}
    np.testing.assert_array_equal(maps["stage1.layer1.conv"], conv1.numpy())
    blocks = feature_maps(model, x, which="blocks")
    assert [m.name for m in blocks] == ["stage1.layer1", "stage1.pool", "stage2.layer1",
                                        "stage2.pool", "head.pool"]
    np.testing.assert_array_equal(blocks[0].maps, block1.numpy())
    [fc] = feature_maps(model, x[0], names=["head.fc"])
    np.testing.assert_allclose(fc.maps, logits.numpy(), rtol=1e-6)
    assert model.training and no_grads(model)
    with pytest.raises(ResultsError, match="no module named 'nope'"):
        feature_maps(model, x[0], names=["nope"])


# -- saliency and single predictions -----------------------------------------------------------
def test_saliency_equals_direct_autograd(shapes, trained):
    x = shapes.x[11]
    trained.train()  # batch norm in training mode would give another gradient
    s = saliency(trained, x, classes=shapes.classes)
    assert trained.training and no_grads(trained)
    trained.eval()
    xr = x[None].clone().requires_grad_(True)
    out = trained(xr)[0]
    target = int(out.argmax())
    (grad,) = torch.autograd.grad(out[target], xr)
    trained.zero_grad(set_to_none=True)
    assert s.target == target and s.score == pytest.approx(float(out[target].detach()))
    np.testing.assert_allclose(s.grad, grad[0].numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(s.saliency, grad[0].abs().amax(0).numpy(), rtol=1e-5, atol=1e-7)
    assert s.saliency.shape == (16, 16)
    assert s.prediction.pred == target and s.prediction.label == shapes.classes[target]

    other = (target + 1) % 10
    xr = x[None].clone().requires_grad_(True)
    (grad2,) = torch.autograd.grad(trained(xr)[0, other], xr)
    s2 = saliency(trained, x, target=other)
    np.testing.assert_allclose(s2.grad, grad2[0].numpy(), rtol=1e-5, atol=1e-7)
    with pytest.raises(ResultsError, match="target"):
        saliency(trained, x, target=10)


# -- uploads -----------------------------------------------------------------------------------
def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_upload_of_a_solid_colour_is_normalised_like_the_data(shapes):
    colour = (200, 30, 90)
    up = prepare_upload(encode(Image.new("RGB", (50, 30), colour)), shapes)
    assert up.x.shape == IMG and up.original_size == (50, 30) and up.format == "PNG"
    for c in range(3):
        want = (colour[c] / 255 - shapes.mean[c]) / shapes.std[c]
        np.testing.assert_allclose(up.x[c].numpy(), want, atol=1e-5)
        np.testing.assert_allclose(up.image[..., c], colour[c] / 255, atol=1e-6)
    jpeg = prepare_upload(encode(Image.new("RGB", (40, 40), colour), "JPEG", quality=95), shapes)
    np.testing.assert_allclose(jpeg.image, up.image, atol=3 / 255)
    # transparent pixels are laid on white
    clear = prepare_upload(encode(Image.new("RGBA", (20, 20), (0, 0, 0, 0))), shapes)
    np.testing.assert_allclose(clear.image, 1.0)

    digits = validation_data(cnn(channels=1), TrainSettings(dataset="digits", n_train=100,
                                                            n_val=50))
    grey = prepare_upload(encode(Image.new("RGB", (16, 16), colour)), digits)
    luma = (0.299 * 200 + 0.587 * 30 + 0.114 * 90) / 255  # ITU-R BT.601, as the data sets
    assert grey.x.shape == (1, 16, 16)
    np.testing.assert_allclose(grey.image, luma, atol=0.6 / 255)
    deep = (np.arange(16 * 16).reshape(16, 16) * 257).astype(np.uint16)  # 16-bit grey PNG
    up16 = prepare_upload(encode(Image.fromarray(deep)), digits)
    np.testing.assert_allclose(up16.image[..., 0], deep / 65535, atol=0.5 / 255)
    inverted = prepare_upload(encode(Image.new("RGB", (16, 16), colour)), digits, invert=True)
    np.testing.assert_allclose(inverted.image, 1 - grey.image, atol=1e-6)
    np.testing.assert_allclose(inverted.x, (1 - grey.image[None, :, :, 0] - digits.mean[0])
                               / digits.std[0], atol=1e-5)


def test_upload_keeps_orientation_and_crops_the_centre(shapes):
    wide = np.zeros((20, 60, 3), np.uint8)
    wide[:, :20] = (0, 0, 255)
    wide[:, 20:40] = (255, 0, 0)  # the centre square
    wide[:, 40:] = (0, 255, 0)
    up = prepare_upload(encode(Image.fromarray(wide)), shapes)
    np.testing.assert_allclose(up.image, np.broadcast_to([1.0, 0, 0], (16, 16, 3)))
    split = np.zeros((32, 32), np.uint8)
    split[:, 16:] = 255  # dark left, bright right
    up = prepare_upload(encode(Image.fromarray(split)), shapes)
    assert up.image[:, :7].max() < 0.05 and up.image[:, 9:].min() > 0.95


def test_a_validation_image_uploaded_comes_back_as_itself(shapes, trained):
    i = 42
    pixels = np.round(shapes.images([i])[0] * 255).astype(np.uint8)
    up = prepare_upload(encode(Image.fromarray(pixels)), shapes)
    tol = 0.5 / 255 / min(shapes.std) + 1e-5  # one 8-bit rounding
    np.testing.assert_allclose(up.x.numpy(), shapes.x[i].numpy(), atol=tol)
    p = predict_one(trained, up.x, shapes.classes)
    assert p.labels == shapes.classes and sum(p.probs) == pytest.approx(1.0)
    with torch.no_grad():
        assert p.pred == int(trained(up.x[None]).argmax())


def png_header_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose IHDR claims ``width`` x ``height`` (CRC fixed): a decompression bomb's
    header, without the bomb."""
    data = bytearray(encode(Image.new("L", (1, 1))))
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = ihdr[4:12]
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    return bytes(data)


def test_bad_uploads_raise_one_clear_line(shapes):
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))
    png = encode(noisy)
    points = validation_data(get_preset("mlp_points"), TrainSettings(dataset="moons",
                                                                     n_train=32, n_val=20))
    cases = {
        "garbage": (b"\x00not an image at all" * 50, {}, "could not be read"),
        "truncated": (png[: len(png) // 2], {}, "could not be read"),
        "empty": (b"", {}, "empty"),
        "not bytes": ("a file name.png", {}, "bytes"),
        "too many bytes": (png, {"max_bytes": 1000}, "limit is"),
        "too many pixels": (png, {"max_pixels": 1000}, "64x64 pixels"),
        "header over the cap": (png_header_claiming(7000, 7000), {}, "7000x7000 pixels"),
        "bomb": (png_header_claiming(100_000, 100_000), {}, "too many pixels"),
        "postscript": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", {},
                       "could not be read"),
    }
    for what, (blob, kw, text) in cases.items():
        with pytest.raises(UploadError, match=text) as err:
            prepare_upload(blob, shapes, **kw)
        assert isinstance(err.value, PlaygroundError) and "\n" not in str(err.value), what
    with pytest.raises(UploadError, match="image data set"):
        prepare_upload(png, points)
    assert prepare_upload(png, shapes).x.shape == IMG  # the intact file is fine
