"""2-bit code packing and ``$readmemh`` memory images.

Bit order (one rule everywhere): code ``j`` of a word sits at bits ``[2j+1 : 2j]``, little-endian, so
code 0 is the two least-significant bits. A byte holds codes ``4b .. 4b+3``.

Engine stream layout (what the generated engine's weight stream and a ``.memh`` image hold):
for each row tile ``r0 = 0, L, 2L, ...`` (L = lanes), for each stage ``t``, for each matrix
(``U`` then ``W``; Fairy±i layers have ``W`` only), for each input column ``j``: one word of L codes,
lane ``l`` holding the code of row ``r0 + l`` (rows past the end are code 0, ignored by the engine).
Dot-product lanes (``lane_style="dot"``) take one row at a time instead: for each row ``r``, for each
stage ``t``, for each matrix, for each chunk ``c = 0 .. ceil(K/L)-1``: one word of L codes, lane ``l``
holding the code of column ``c*L + l`` (columns past K are code 0, ignored by the engine).
A ``.memh`` file has one word per line in hex, most-significant digit first, ``L/2`` digits a line
(rounded up), no address markers: ``$readmemh`` loads it into ``reg [2L-1:0] mem [0:WORDS-1]``.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from .. import FairyError

__all__ = ["pack_codes", "unpack_codes", "stream_words", "stream_words_dot", "unstream_words", "write_memh", "read_memh",
           "write_scales_json"]


def _as_np_codes(codes) -> np.ndarray:
    a = codes.numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
    if a.dtype != np.uint8:
        a = a.astype(np.uint8)
    if a.size and int(a.max()) > 3:
        raise FairyError(f"codes must be in 0..3, found {int(a.max())}")
    return a


def pack_codes(codes) -> np.ndarray:
    """Pack codes (any shape, last axis padded to a multiple of 4 with code 0) into uint8, 4 a byte."""
    a = _as_np_codes(codes)
    pad = (-a.shape[-1]) % 4
    if pad:
        a = np.concatenate([a, np.zeros(a.shape[:-1] + (pad,), np.uint8)], axis=-1)
    a = a.reshape(a.shape[:-1] + (-1, 4))
    return (a[..., 0] | (a[..., 1] << 2) | (a[..., 2] << 4) | (a[..., 3] << 6)).astype(np.uint8)


def unpack_codes(packed: np.ndarray, count: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: the first ``count`` codes of the last axis."""
    p = np.asarray(packed, dtype=np.uint8)
    out = np.stack([(p >> s) & 3 for s in (0, 2, 4, 6)], axis=-1).reshape(p.shape[:-1] + (-1,))
    return out[..., :count]


def stream_words(matrices: list[list], lanes: int) -> np.ndarray:
    """Engine stream layout of one layer as packed words: uint8 ``(words, ceil(lanes/4))``.

    ``matrices[t]`` is the list of code matrices of stage t, in stream order (``[U_t, W_t]`` for Fairy2i,
    ``[W_t]`` for Fairy±i), each ``(n, m)``.
    """
    if lanes < 1:
        raise FairyError(f"lanes must be a positive integer, not {lanes}")
    mats = [[_as_np_codes(c) for c in per_t] for per_t in matrices]
    n, m = mats[0][0].shape
    tiles = -(-n // lanes)
    per_t = len(mats[0])
    # (tile, stage, matrix, column, lane)
    buf = np.zeros((tiles * lanes, len(mats), per_t, m), np.uint8)
    for t, per in enumerate(mats):
        for k, c in enumerate(per):
            if c.shape != (n, m):
                raise FairyError(f"code matrices differ in shape: {c.shape} and {(n, m)}")
            buf[:n, t, k] = c
    buf = buf.reshape(tiles, lanes, len(mats), per_t, m).transpose(0, 2, 3, 4, 1)
    return pack_codes(buf.reshape(-1, lanes))


def stream_words_dot(matrices: list[list], lanes: int) -> np.ndarray:
    """Dot-product lane stream layout of one layer: uint8 ``(words, ceil(lanes/4))`` (see the module doc)."""
    if lanes < 1:
        raise FairyError(f"lanes must be a positive integer, not {lanes}")
    mats = [[_as_np_codes(c) for c in per_t] for per_t in matrices]
    n, m = mats[0][0].shape
    chunks = -(-m // lanes)
    buf = np.zeros((n, len(mats), len(mats[0]), chunks * lanes), np.uint8)
    for t, per in enumerate(mats):
        for k, c in enumerate(per):
            if c.shape != (n, m):
                raise FairyError(f"code matrices differ in shape: {c.shape} and {(n, m)}")
            buf[:, t, k, :m] = c
    return pack_codes(buf.reshape(-1, lanes))


#: Bit planes ``(h, x = h xor l)`` of each code as a 2-bit field: the Gray code of the code.
GRAY = np.array([0, 1, 3, 2], np.uint8)


def stream_words_array(matrices: list[list], rows: int, cols: int) -> np.ndarray:
    """Array stream layout of one layer: uint8 ``(words, ceil(rows*cols/4))``. For each row tile of
    ``rows`` rows, stage, matrix and chunk of ``cols`` input columns, one word whose 2-bit field
    ``r*cols + c`` is row ``r0 + r``, column ``chunk*cols + c`` (code 0 past the last row or column).

    Each field holds the code's two bit planes, the high bit ``h`` above ``x = h xor l``: the Gray code
    of the code (0, 1, 3, 2 for codes 0, 1, 2, 3), which the array's trees select with directly."""
    if rows < 1 or cols < 1:
        raise FairyError(f"the array shape must be positive, not {rows} x {cols}")
    mats = [[_as_np_codes(c) for c in per_t] for per_t in matrices]
    n, m = mats[0][0].shape
    tiles, chunks = -(-n // rows), -(-m // cols)
    buf = np.zeros((tiles * rows, len(mats), len(mats[0]), chunks * cols), np.uint8)
    for t, per in enumerate(mats):
        for k, c in enumerate(per):
            if c.shape != (n, m):
                raise FairyError(f"code matrices differ in shape: {c.shape} and {(n, m)}")
            buf[:n, t, k, :m] = GRAY[c]
    # (tile, r, t, k, chunk, c) -> (tile, t, k, chunk, r, c)
    buf = buf.reshape(tiles, rows, len(mats), len(mats[0]), chunks, cols).transpose(0, 2, 3, 4, 1, 5)
    return pack_codes(np.ascontiguousarray(buf).reshape(-1, rows * cols))


def unstream_words(words: np.ndarray, lanes: int, n: int, m: int, stages: int, per_t: int) -> list:
    """Inverse of :func:`stream_words`: ``[[codes (n, m) per matrix] per stage]``."""
    tiles = -(-n // lanes)
    c = unpack_codes(words, lanes).reshape(tiles, stages, per_t, m, lanes)
    c = c.transpose(1, 2, 0, 4, 3).reshape(stages, per_t, tiles * lanes, m)[:, :, :n]
    return [[torch.from_numpy(np.ascontiguousarray(c[t, k])) for k in range(per_t)]
            for t in range(stages)]


def unstream_words_array(words: np.ndarray, rows: int, cols: int, n: int, m: int, stages: int,
                         per_t: int) -> list:
    """Inverse of :func:`stream_words_array`: ``[[codes (n, m) per matrix] per stage]``."""
    tiles, chunks = -(-n // rows), -(-m // cols)
    f = unpack_codes(words, rows * cols).reshape(tiles, stages, per_t, chunks, rows, cols)
    f = f.transpose(1, 2, 0, 4, 3, 5).reshape(stages, per_t, tiles * rows, chunks * cols)[:, :, :n, :m]
    codes = np.argsort(GRAY)[f].astype(np.uint8)          # Gray code back to the code
    return [[torch.from_numpy(np.ascontiguousarray(codes[t, k])) for k in range(per_t)]
            for t in range(stages)]


def stream_words_for(matrices: list[list], cfg) -> np.ndarray:
    """The stream layout of the engine ``cfg`` (an :class:`~fairyhw.hw.config.EngineConfig`)."""
    if cfg.lane_style == "array":
        return stream_words_array(matrices, cfg.rows, cfg.cols)
    if cfg.lane_style == "dot":
        return stream_words_dot(matrices, cfg.lanes)
    return stream_words(matrices, cfg.lanes)


def write_memh(path, words: np.ndarray, lanes: int) -> None:
    """Write packed words (uint8 ``(N, ceil(lanes/4))``) as a ``$readmemh`` image of 2*lanes-bit words."""
    w = np.ascontiguousarray(np.asarray(words, np.uint8)[:, ::-1])
    digits = -(-2 * lanes // 4)
    hexes = np.frombuffer(w.tobytes().hex().encode(), dtype="S1").reshape(len(w), -1)
    hexes = hexes[:, hexes.shape[1] - digits:]
    lines = np.concatenate([hexes, np.full((len(w), 1), b"\n", dtype="S1")], axis=1)
    with open(path, "wb") as f:
        f.write(lines.tobytes())


def read_memh(path, lanes: int) -> np.ndarray:
    """Read a ``.memh`` image written by :func:`write_memh` back into packed words."""
    nbytes = -(-lanes // 4)
    rows = []
    with open(path) as f:
        for ln, line in enumerate(f, 1):
            s = line.split("//")[0].strip()
            if not s:
                continue
            try:
                v = int(s, 16)
            except ValueError:
                raise FairyError(f"{os.path.basename(path)} line {ln}: not a hex word: {s!r}") from None
            rows.append(np.frombuffer(v.to_bytes(nbytes, "little"), np.uint8))
    return np.stack(rows) if rows else np.zeros((0, nbytes), np.uint8)


def write_scales_json(path, scales: dict) -> None:
    """Write ``{layer: {"U": [[s_re, s_im], ...], "W": [...]}}`` with sorted keys (deterministic)."""
    with open(path, "w") as f:
        json.dump(scales, f, indent=1, sort_keys=True)
        f.write("\n")
