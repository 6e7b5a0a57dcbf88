"""The hidden test split of every kind of data set: disjoint from the training and validation
splits (no identical example), deterministic, drawn by its own seed, standardised like its
training data, and refused with one clear line when a set cannot hold enough back. Nothing
is downloaded: torchvision sets read small files in the official layout written here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from playground import data, holdout
from playground.data import DatasetError, load_dataset
from playground.holdout import load_test_split, max_test
from tests import data_files


def _rows(x: torch.Tensor) -> set[bytes]:
    """Every example as its bytes: equal bytes = an identical example."""
    flat = x.reshape(x.shape[0], -1).contiguous().numpy()
    return {row.tobytes() for row in flat}


CASES = [
    ("shapes", {"input_shape": (3, 16, 16), "n_train": 300, "n_val": 100}),
    ("spirals", {"n_train": 500, "n_val": 200}),
    ("xor", {"n_train": 300, "n_val": 100, "noise": 0.2}),
    ("digits", {"input_shape": (1, 8, 8), "n_train": 1000, "n_val": 400}),  # no resampling
]


@pytest.mark.parametrize(("name", "kw"), CASES, ids=[c[0] for c in CASES])
def test_the_test_split_shares_no_example_with_training_or_validation(name, kw) -> None:
    split = load_dataset(name, seed=4, **kw)
    test = load_test_split(name, test_seed=11, n_test=150, data_seed=4, **kw)
    assert test.x.shape[0] == test.y.shape[0] == 150 and test.x.dtype == torch.float32
    assert tuple(test.x.shape[1:]) == tuple(split.val_x.shape[1:])
    seen = _rows(split.train_x) | _rows(split.val_x)
    assert len(_rows(test.x)) == 150  # no repeats inside the split either
    assert not _rows(test.x) & seen
    # every class is there, labels in range, names as the set's
    assert set(test.y.tolist()) == set(range(split.num_classes))
    assert test.classes == split.classes
    # standardised with the training split's statistics (the network sees what it saw)
    assert (test.mean, test.std) == (split.mean, split.std)


def test_the_digits_test_split_is_the_rest_of_the_1797_images() -> None:
    kw = {"input_shape": (1, 8, 8), "n_train": 1000, "n_val": 400}
    split = load_dataset("digits", seed=4, **kw)
    test = load_test_split("digits", test_seed=1, n_test=397, data_seed=4, **kw)  # all the rest
    everything = torch.cat([split.train_x, split.val_x, test.x])
    assert len(_rows(everything)) == 1797  # the three splits are the whole set, once each
    assert max_test("digits", n_train=1000, n_val=400) == 397
    with pytest.raises(DatasetError, match="1 to 397 test examples"):
        load_test_split("digits", test_seed=1, n_test=398, data_seed=4, **kw)
    with pytest.raises(DatasetError, match="leaves none for a test split"):
        load_test_split("digits", test_seed=1, n_test=10)  # the defaults take all 1,797


@pytest.mark.parametrize(("name", "kw"), CASES[:3], ids=[c[0] for c in CASES[:3]])
def test_the_test_split_is_deterministic_and_follows_its_own_seed(name, kw) -> None:
    n = kw["n_val"]  # as many as validation: a shared random stream would repeat its examples
    first = load_test_split(name, test_seed=7, n_test=n, data_seed=2, **kw)
    data.clear_cache()  # regenerated from scratch, not a cached copy
    again = load_test_split(name, test_seed=7, n_test=n, data_seed=2, **kw)
    assert torch.equal(first.x, again.x) and torch.equal(first.y, again.y)
    other = load_test_split(name, test_seed=8, n_test=n, data_seed=2, **kw)
    assert not torch.equal(first.x, other.x)
    # a student choosing the test seed as their data seed draws other examples
    student = load_dataset(name, seed=7, **kw)
    assert not _rows(first.x) & (_rows(student.train_x) | _rows(student.val_x))
    # callers get copies: changing one does not change the next load
    first.x.zero_()
    assert torch.equal(load_test_split(name, test_seed=7, n_test=n, data_seed=2, **kw).x,
                       again.x)


def _unique_mnist(root, n_train: int = 60, n_test: int = 40) -> None:
    """MNIST files in the official layout whose every image is different (its index is
    written into two pixels), so identical bytes mean the same image."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n, base in (("train", n_train, 0), ("t10k", n_test, 1000)):
        images = np.zeros((n, 28, 28), dtype=np.uint8)
        index = np.arange(n) + base
        images[:, 0, 0], images[:, 0, 1] = index % 256, index // 256
        images[:, 5:20, 5:20] = (np.arange(n) % 10 * 25)[:, None, None]
        data_files.write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        data_files.write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


def test_a_torchvision_test_split_comes_from_the_official_test_files_past_validation(
        tmp_path) -> None:
    _unique_mnist(tmp_path)
    kw = {"root": tmp_path, "n_train": 30, "n_val": 15}
    split = load_dataset("mnist", seed=3, allow_download=False, **kw)
    test = load_test_split("mnist", test_seed=5, n_test=25, data_seed=3, **kw)
    assert test.x.shape == (25, 1, 28, 28)
    assert not _rows(test.x) & (_rows(split.train_x) | _rows(split.val_x))
    # the official test split holds 40 images: validation + test take all of them
    assert len(_rows(torch.cat([split.val_x, test.x]))) == 40
    assert sorted(test.indices.tolist()) == test.indices.tolist()
    assert test.mean == split.mean == (0.1307,)
    with pytest.raises(DatasetError, match="40 official test images"):
        load_test_split("mnist", test_seed=5, n_test=26, data_seed=3, **kw)


def test_a_torchvision_set_without_files_fails_in_one_line(tmp_path) -> None:
    with pytest.raises(DatasetError) as err:
        load_test_split("cifar10", test_seed=1, n_test=100, root=tmp_path / "none")
    assert "\n" not in str(err.value)


def test_every_registered_set_can_hold_back_a_test_split() -> None:
    assert holdout.holdout_datasets() == list(data.DATASETS)
