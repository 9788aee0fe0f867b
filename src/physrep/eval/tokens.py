"""Token arrays on disk: written in chunks, read back by rows as float32.

At The Well's sizes a split's embeddings are tens of gigabytes (60,000 windows × 1568 ViT
tokens × 384 floats), so nothing downstream may hold a split whole. Tokens are stored as one
`.npy` per split, appended batch by batch, at float32, float16 or bfloat16 (as raw 16-bit
words: numpy has no bfloat16), and read with positioned reads rather than a memory map, so
the pages a probe has read are the page cache's, not the process's resident memory.

`TokenRows` is the read side: a (rows, tokens, width) view of one file, or of an in-memory
array (tests, small callers), that yields float32 batches by row index or in order.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from physrep.errors import PhysrepError

# storage dtype name -> the numpy dtype of the words on disk
STORAGE = {"float32": np.float32, "float16": np.float16, "bfloat16": np.uint16}
READ_BYTES = 32 << 20  # float32 bytes read at a time: what bounds a reader's memory


def to_storage(tokens: torch.Tensor, dtype: str) -> np.ndarray:
    """A float tensor as the words stored for `dtype` (bfloat16 rounded to nearest even)."""
    if dtype == "bfloat16":
        return tokens.to(torch.bfloat16).view(torch.int16).cpu().numpy().view(np.uint16)
    return tokens.to(getattr(torch, dtype)).cpu().numpy()


def from_storage(words: np.ndarray, dtype: str) -> np.ndarray:
    """Stored words back to float32."""
    if dtype == "bfloat16":
        return (words.astype(np.uint32) << 16).view(np.float32)
    return words.astype(np.float32, copy=False)


def pool_tokens(tokens: torch.Tensor, n: int) -> torch.Tensor:
    """(B, N, D) -> (B, n, D): token j becomes the mean of tokens j, j+n, j+2n, ... (for a
    ViT whose tokens run time-major, the mean over time at each patch). An encoder with n
    tokens or fewer is kept as it is."""
    if n <= 0 or tokens.shape[1] <= n:
        return tokens
    if tokens.shape[1] % n:
        raise PhysrepError(
            f"cannot pool {tokens.shape[1]} tokens to {n} (embed_tokens must divide the "
            "encoder's token count)"
        )
    return tokens.reshape(len(tokens), -1, n, tokens.shape[-1]).mean(1)


class TokenWriter:
    """Appends (B, N, D) batches to a `.npy` of `rows` rows; its header is written once the
    first batch gives the token shape. `close()` checks that every row arrived."""

    def __init__(self, path: Path, rows: int, dtype: str):
        self.path, self.rows, self.dtype = Path(path), rows, dtype
        self.written = 0
        self._file = None

    def append(self, tokens: torch.Tensor) -> None:
        words = to_storage(tokens, self.dtype)
        if self._file is None:
            self._file = self.path.open("wb")
            header = {
                "descr": np.lib.format.dtype_to_descr(words.dtype),
                "fortran_order": False,
                "shape": (self.rows, *words.shape[1:]),
            }
            np.lib.format.write_array_header_2_0(self._file, header)
        self._file.write(np.ascontiguousarray(words).tobytes())
        self.written += len(words)

    def close(self, token_shape: tuple[int, int] = (1, 1)) -> None:
        """Finish the file (an empty one gets `token_shape`); refuse a wrong row count."""
        if self._file is None:
            self.append(torch.zeros((0, *token_shape)))
        self._file.close()
        if self.written != self.rows:
            raise PhysrepError(f"wrote {self.written} rows for {self.rows} windows", self.path)


class TokenRows:
    """(rows, tokens, width) float32 view of stored tokens; reads only the rows asked for."""

    def __init__(self, source: Path | np.ndarray, dtype: str = "float32", rows=None):
        self.dtype = dtype
        if isinstance(source, np.ndarray):
            self.path, self._array = None, source
            shape, self._offset = source.shape, 0
        else:
            self.path, self._array = Path(source), None
            with self.path.open("rb") as f:
                version = np.lib.format.read_magic(f)
                header = {(1, 0): np.lib.format.read_array_header_1_0}.get(
                    version, np.lib.format.read_array_header_2_0
                )
                shape, _, words = header(f)
                self._offset = f.tell()
            if np.dtype(words) != STORAGE[dtype]:
                raise PhysrepError(f"holds {words}, not {dtype} words", self.path)
            expected = self._offset + int(np.prod(shape)) * np.dtype(words).itemsize
            if self.path.stat().st_size != expected:
                raise PhysrepError(
                    f"is {self.path.stat().st_size} bytes, not {expected}", self.path
                )
        self._stored = shape[0]
        self.token_shape = tuple(shape[1:])
        self.rows = np.arange(shape[0]) if rows is None else np.asarray(rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.token_shape)

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, keep: np.ndarray) -> TokenRows:
        """The rows at positions (or boolean mask) `keep` of this view."""
        view = TokenRows.__new__(TokenRows)
        view.__dict__.update(self.__dict__)
        view.rows = self.rows[keep]
        return view

    def read(self, index: np.ndarray) -> np.ndarray:
        """float32 tokens of this view's rows at positions `index`, in that order."""
        stored = self.rows[np.asarray(index)]
        if self._array is not None:
            return from_storage(self._array[stored], self.dtype)
        order = np.argsort(stored, kind="stable")
        words = self._read_sorted(stored[order])
        out = np.empty((len(stored), *self.token_shape), np.float32)
        out[order] = from_storage(words, self.dtype)
        return out

    def spans(self, size: int | None = None) -> Iterator[np.ndarray]:
        """Positions of every row in order, `size` at a time (default: READ_BYTES' worth)."""
        size = size or max(1, READ_BYTES // (4 * int(np.prod(self.token_shape))))
        for start in range(0, len(self), size):
            yield np.arange(start, min(start + size, len(self)))

    def batches(self, size: int | None = None) -> Iterator[np.ndarray]:
        """Every row's float32 tokens in order, a span at a time."""
        for index in self.spans(size):
            yield self.read(index)

    def means(self) -> np.ndarray:
        """(rows, width) float64 mean of each row's tokens, read a span at a time."""
        parts = [t.mean(1, dtype=np.float64) for t in self.batches()]
        return np.concatenate(parts) if parts else np.zeros((0, self.token_shape[-1]))

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self.read(np.array([index]))[0]
        return self.read(np.arange(len(self))[index])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self.read(np.arange(len(self)))
        return whole if dtype is None else whole.astype(dtype)

    def _read_sorted(self, stored: np.ndarray) -> np.ndarray:
        """Rows `stored` (ascending) of the file, one positioned read per run of neighbours."""
        words = np.empty((len(stored), *self.token_shape), STORAGE[self.dtype])
        row_bytes = words[:1].nbytes
        target = memoryview(words.reshape(-1).view(np.uint8))
        breaks = np.flatnonzero(np.diff(stored) != 1) + 1
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for run in np.split(np.arange(len(stored)), breaks):
                if not len(run):
                    continue
                lo, hi = run[0] * row_bytes, (run[-1] + 1) * row_bytes
                offset = self._offset + int(stored[run[0]]) * row_bytes
                _read_exactly(fd, target[lo:hi], offset, self.path)
        finally:
            os.close(fd)
        return words


def _read_exactly(fd: int, into: memoryview, offset: int, path: Path) -> None:
    done = 0
    while done < len(into):
        got = os.preadv(fd, [into[done:]], offset + done)
        if got == 0:
            raise PhysrepError(f"ends early (at byte {offset + done})", path)
        done += got
