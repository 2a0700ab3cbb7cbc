"""Host side of the engine's streams: beats to send, results to decode, and the golden reference.

A layer is given as ``matrices[t][k]``: the code matrix (uint8 ``(rows, K)``) of stage ``t`` and
matrix ``k`` in stream order (``[U_t, W_t]`` for Fairy2i, ``[W_t]`` for Fairy±i), and int8 activations
``p, q`` of length ``K``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..model import golden as g
from ..model.pack import stream_words, stream_words_array, stream_words_dot
from .config import MODES
from .timing import tile_rows

__all__ = ["cmd_beat", "act_beats", "wgt_beats", "decode_results", "ref_results", "rescale_results"]


def cmd_beat(k: int, rows: int, max_in: int) -> int:
    """The ``cmd`` payload as an integer: ``k`` in the low bits, ``rows`` above it."""
    return k | (rows << max_in.bit_length())


def act_beats(p, q, passes: int = 1, per_beat: int = 1, pad: int = 0) -> list[int]:
    """``act`` payloads: ``p`` in bits [7:0], ``q`` in bits [15:8] (two's complement), repeated for
    ``passes`` passes (``sharing="stream"`` engines take the vector once per pass). ``per_beat``
    elements a beat (the array style's ``cols``), element ``c`` at bits ``[16c+15:16c]``, the last beat
    padded with ``pad`` (16 bits an element; the engine ignores padding)."""
    one = [(int(a) & 0xFF) | ((int(b) & 0xFF) << 8) for a, b in zip(p.tolist(), q.tolist())]
    if per_beat > 1:
        one = one + [pad & 0xFFFF] * (-len(one) % per_beat)
        one = [sum(v << (16 * c) for c, v in enumerate(one[i:i + per_beat]))
               for i in range(0, len(one), per_beat)]
    return one * passes


def wgt_beats(matrices, lanes: int, lane_style: str = "output", shape=None) -> list[int]:
    """``wgt`` payloads in the :mod:`fairyhw.model.pack` stream layout of the lane style, one int of
    ``2*lanes`` bits each (``shape``: the array's ``(rows, cols)``)."""
    if lane_style == "array":
        words = stream_words_array(matrices, *shape)
    else:
        words = stream_words(matrices, lanes) if lane_style == "output" else \
            stream_words_dot(matrices, lanes)
    return [int.from_bytes(w.tobytes(), "little") for w in words]


def decode_results(payloads, *, rows: int, lanes: int, stages: int, matrices: int, parts: int,
                   acc_width: int, group: int = 1) -> torch.Tensor:
    """Decode ``res`` payloads (ints, sums only) to int64 ``(stages, matrices, rows, parts)``.

    ``lanes``: the engine's row tile (``Engine.row_tile``: its lanes, 1 for dot lanes, the array's
    rows); ``group``: rows a beat (the array's result group; rows past the layer's end in a tile's last
    beat are padding)."""
    out = np.zeros((stages, matrices, rows, parts), np.int64)
    tiles = tile_rows(rows, lanes)
    expected = sum(-(-c // group) for c in tiles) * stages * matrices
    if len(payloads) != expected:
        raise ValueError(f"expected {expected} result beats, got {len(payloads)}")
    mask, half = (1 << acc_width) - 1, 1 << (acc_width - 1)
    row_bits = parts * acc_width
    i = 0
    for r0, count in zip(range(0, rows, lanes), tiles):
        for t in range(stages):
            for k in range(matrices):
                for b in range(-(-count // group)):
                    v = payloads[i]
                    i += 1
                    for g_ in range(min(group, count - b * group)):
                        for part in range(parts):
                            x = (v >> (g_ * row_bits + part * acc_width)) & mask
                            out[t, k, r0 + b * group + g_, part] = x - (x >= half) * (1 << acc_width)
    return torch.from_numpy(out)


def ref_results(matrices, p, q, *, mode: str = "fairy2i", accumulate: str = "split") -> torch.Tensor:
    """Golden integer sums of a layer, int64 ``(stages, matrices, rows, parts)``: the engine's contract."""
    conj = [name == "W" for name in MODES[mode]]
    per_t = []
    for mats in matrices:
        per_k = [g.integer_sums(c, p, q, conj=conj[k]) for k, c in enumerate(mats)]
        per_t.append(torch.stack(per_k))
    s = torch.stack(per_t)
    return s if accumulate == "split" else g.merge_sums(s)


def rescale_results(sums: torch.Tensor, scales, act: g.ActQuant) -> tuple[torch.Tensor, torch.Tensor]:
    """Float output ``(re, im)`` of split results ``(stages, matrices, rows, 4)`` for one token.

    ``scales[t][k]`` is the :class:`~fairyhw.model.golden.Stage` (or ``(s_re, s_im)``) of stage t, matrix k."""
    re = im = 0
    for t in range(sums.shape[0]):
        for k in range(sums.shape[1]):
            st = scales[t][k]
            if not isinstance(st, g.Stage):
                st = g.Stage(None, float(st[0]), float(st[1]))
            r, i = g.rescale(sums[t, k], st, act.sr, act.si)
            re, im = re + r, im + i
    return re, im
