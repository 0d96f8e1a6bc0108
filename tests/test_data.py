"""descentlab.data: the built-in datasets, splits, standardisation, and the file readers on
tiny files written here in each format."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from descentlab import data


def write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        payload = gzip.compress(payload)
    path.write_bytes(payload)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_files_are_read(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 4, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 7, dtype=np.uint8)
    write_idx(tmp_path / "img", images, compress)
    write_idx(tmp_path / "lab", labels, compress)
    d = data.read_idx(tmp_path / "img", tmp_path / "lab")
    assert d.x.dtype == np.float32 and d.x.shape == (7, 12)
    np.testing.assert_array_equal(d.x, images.reshape(7, 12))
    np.testing.assert_array_equal(d.y, labels)


@pytest.mark.parametrize(("payload", "message"), [
    (b"\x00\x00\x08", "bad magic"),
    (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "bad magic"),
    (b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00\x00\x00\x00", "0x0d is not supported"),
    (b"\x00\x00\x08\x02" + struct.pack(">I", 3), "truncated"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x00\x00", "declares shape \\(5,\\)"),
    (b"\x00\x00\x08\x03" + struct.pack(">3I", 60000, 60000, 60000), "absurd shape"),
])
def test_broken_idx_files_are_refused(tmp_path, payload, message):
    (tmp_path / "bad").write_bytes(payload)
    write_idx(tmp_path / "lab", np.zeros(1))
    with pytest.raises(ValueError, match=message):
        data.read_idx(tmp_path / "bad", tmp_path / "lab")


def test_a_truncated_gzip_is_refused(tmp_path):
    write_idx(tmp_path / "img", np.zeros((50, 5)), compress=True)
    raw = (tmp_path / "img").read_bytes()
    (tmp_path / "img").write_bytes(raw[: len(raw) // 2])
    write_idx(tmp_path / "lab", np.zeros(50))
    with pytest.raises(ValueError, match="gzip"):
        data.read_idx(tmp_path / "img", tmp_path / "lab")


def test_idx_count_mismatch_and_missing_file(tmp_path):
    write_idx(tmp_path / "img", np.zeros((3, 2)))
    write_idx(tmp_path / "lab", np.zeros(4))
    with pytest.raises(ValueError, match="3 images but .* 4 labels"):
        data.read_idx(tmp_path / "img", tmp_path / "lab")
    with pytest.raises(FileNotFoundError, match="no such file"):
        data.read_idx(tmp_path / "nothing", tmp_path / "lab")


def test_cifar10_binary_is_read(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.array([3, 0, 9], np.uint8)
    images = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
    records = np.concatenate([labels[:, None], images], axis=1)
    (tmp_path / "a.bin").write_bytes(records[:2].tobytes())
    (tmp_path / "b.bin").write_bytes(records[2:].tobytes())
    d = data.read_cifar10([tmp_path / "a.bin", tmp_path / "b.bin"])
    np.testing.assert_array_equal(d.y, labels)
    np.testing.assert_array_equal(d.x, images)
    (tmp_path / "c.bin").write_bytes(records.tobytes()[:-1])
    with pytest.raises(ValueError, match="not a whole number of CIFAR-10 records"):
        data.read_cifar10(tmp_path / "c.bin")
    bad = records.copy()
    bad[0, 0] = 12
    (tmp_path / "d.bin").write_bytes(bad.tobytes())
    with pytest.raises(ValueError, match="label 12"):
        data.read_cifar10(tmp_path / "d.bin")


def test_splits_are_stratified_disjoint_and_deterministic():
    digits = data.digits()
    assert digits.x.shape == (1797, 64) and digits.classes == 10
    a = data.split(digits, validation=0.2, test=0.2, seed=5)
    b = data.split(digits, validation=0.2, test=0.2, seed=5)
    for part_a, part_b in zip((a.train, a.validation, a.test), (b.train, b.validation, b.test),
                              strict=True):
        np.testing.assert_array_equal(part_a.x, part_b.x)
    assert len(a.train) + len(a.validation) + len(a.test) == 1797
    assert len(a.test) == pytest.approx(0.2 * 1797, abs=2)
    rows = {row.tobytes() for part in (a.train, a.validation, a.test) for row in part.x}
    assert len(rows) == len({row.tobytes() for row in digits.x})  # nothing duplicated
    overall = np.bincount(digits.y, minlength=10) / len(digits)
    for part in (a.train, a.validation, a.test):
        share = np.bincount(part.y, minlength=10) / len(part)
        assert np.abs(share - overall).max() < 0.01  # stratified
    c = data.split(digits, seed=6)
    assert not np.array_equal(a.test.y, c.test.y)


def test_standardisation_uses_the_training_split_only():
    splits = data.prepare("digits", seed=0)
    raw = data.split(data.digits(), seed=0)
    train = raw.train.x.astype(np.float64)
    mean, std = train.mean(axis=0), train.std(axis=0)
    std[std == 0] = 1
    expected = (raw.validation.x - mean) / std
    np.testing.assert_allclose(splits.validation.x, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(splits.train.x.mean(axis=0), 0, atol=1e-5)
    assert splits.train.x.dtype == np.float32


def test_mnist1d_is_made_locally_and_leaves_the_global_generator_alone():
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    d = data.mnist1d(num_samples=200)
    assert np.random.random() == expected
    assert d.x.shape == (200, 40) and set(np.unique(d.y)) == set(range(10))
    np.testing.assert_array_equal(d.x, data.mnist1d(num_samples=200).x)


def test_regression_data_and_bad_requests():
    d = data.regression(n_samples=50, n_features=3)
    assert d.task == "regression" and d.x.shape == (50, 3)
    s = data.split(d)
    assert len(s.train) + len(s.validation) + len(s.test) == 50
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        data.load("imagenet")
    with pytest.raises(ValueError, match="leave no training data"):
        data.split(d, validation=0.5, test=0.5)
    with pytest.raises(ValueError, match="validation share"):
        data.split(d, validation=0.0)
