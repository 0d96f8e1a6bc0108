"""Readers for dataset files users already have: MNIST / Fashion-MNIST IDX and CIFAR-10's
binary version. Both formats are plain bytes with a fixed layout; every size a header declares
is checked against the bytes the file holds before any array is made, and nothing is ever
unpickled.

IDX (LeCun's MNIST format): a 4-byte magic number ``00 00 TT NN`` (TT the element type, 0x08
for unsigned bytes; NN the number of dimensions), NN big-endian uint32 dimension sizes, then
the data, row-major. Files may be gzipped (recognised by their first two bytes).

CIFAR-10 binary (``data_batch_N.bin``, ``test_batch.bin``): records of 1 label byte followed by
3072 image bytes (1024 red, 1024 green, 1024 blue, each 32 x 32 row-major).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from .datasets import Dataset

UNSIGNED_BYTE = 0x08
CIFAR_RECORD = 1 + 3 * 32 * 32
MAX_BYTES = 1 << 34  # 16 GiB: a larger declared size is a corrupt header, not a dataset


def _read_bytes(path: str | os.PathLike) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as exc:  # a truncated or corrupt gzip stream
        raise ValueError(f"{path}: cannot be read as gzip ({exc})") from exc


def _read_idx_array(path: str | os.PathLike) -> np.ndarray:
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    kind, ndim = raw[2], raw[3]
    if kind != UNSIGNED_BYTE:
        raise ValueError(f"{path}: IDX element type 0x{kind:02x} is not supported (only "
                         "unsigned bytes, 0x08, as in MNIST and Fashion-MNIST)")
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path}: IDX header is truncated or has no dimensions")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
    count = int(np.prod(shape, dtype=object))
    if count > MAX_BYTES:
        raise ValueError(f"{path}: IDX header declares an absurd shape {shape}")
    if len(raw) - header != count:
        raise ValueError(f"{path}: IDX header declares shape {shape} ({count} bytes) but the "
                         f"file holds {len(raw) - header} bytes of data")
    return np.frombuffer(raw, np.uint8, count, offset=header).reshape(shape)


def read_idx(images: str | os.PathLike, labels: str | os.PathLike,
             name: str = "idx") -> Dataset:
    """Images and labels from a pair of IDX files (e.g. ``train-images-idx3-ubyte.gz`` and
    ``train-labels-idx1-ubyte.gz``): each image flattened, pixel values 0-255 as float32."""
    x = _read_idx_array(images)
    y = _read_idx_array(labels)
    if y.ndim != 1:
        raise ValueError(f"{labels}: labels must be one-dimensional, got shape {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels")
    return Dataset(name, x.reshape(len(x), -1).astype(np.float32), y.astype(np.int64),
                   int(y.max()) + 1 if len(y) else 0)


def read_cifar10(paths: list[str | os.PathLike] | str | os.PathLike,
                 name: str = "cifar10") -> Dataset:
    """CIFAR-10 binary batches, concatenated: 3072 features per image (channel-major, as in
    the file), float32 0-255; labels 0-9."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    xs, ys = [], []
    for path in paths:
        raw = _read_bytes(path)
        if len(raw) == 0 or len(raw) % CIFAR_RECORD:
            raise ValueError(f"{path}: {len(raw)} bytes is not a whole number of CIFAR-10 "
                             f"records ({CIFAR_RECORD} bytes each)")
        records = np.frombuffer(raw, np.uint8).reshape(-1, CIFAR_RECORD)
        labels = records[:, 0]
        if labels.max() > 9:
            raise ValueError(f"{path}: label {int(labels.max())} is not a CIFAR-10 class (0-9)")
        xs.append(records[:, 1:].astype(np.float32))
        ys.append(labels.astype(np.int64))
    if not xs:
        raise ValueError("read_cifar10 needs at least one file")
    return Dataset(name, np.concatenate(xs), np.concatenate(ys), 10)
