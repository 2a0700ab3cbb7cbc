"""Host side of the engine's streams: weight beats, results decoded, and the golden reference (the
``cmd`` and ``act`` beats are built in :mod:`fairyhw.hw.streams`).

A layer is given as ``matrices[t][k]``: the code matrix (uint8 ``(rows, K)``) of stage ``t`` and
matrix ``k`` in stream order (``[U_t, W_t]`` for Fairy2i, ``[W_t]`` for Fairy±i), and int8 activations
``p, q`` of length ``K``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..model import golden as g
from ..model.pack import stream_words, stream_words_array, stream_words_dot
from .config import MODES, EngineConfig
from .streams import unpack_result
from .timing import tile_rows

__all__ = ["wgt_beats", "decode_results", "ref_results", "rescale_results"]


def wgt_beats(matrices, lanes: int, lane_style: str = "output", shape=None) -> list[int]:
    """``wgt`` payloads in the :mod:`fairyhw.model.pack` stream layout of the lane style, one int of
    ``2*lanes`` bits each (``shape``: the array's ``(rows, cols)``)."""
    if lane_style == "array":
        words = stream_words_array(matrices, *shape)
    else:
        words = stream_words(matrices, lanes) if lane_style == "output" else \
            stream_words_dot(matrices, lanes)
    return [int.from_bytes(w.tobytes(), "little") for w in words]


def decode_results(cfg: EngineConfig, payloads, rows: int) -> torch.Tensor:
    """Decode a layer's ``res`` payloads (ints) to int64 ``(stages, matrices, rows, parts)``, in the
    engine's result order: row tile, stage, matrix, then the tile's rows (``group`` a beat for the
    array style; rows past the layer's end in a tile's last beat are padding)."""
    stages, matrices, per = cfg.stages, len(cfg.matrices), cfg.res_per_beat
    out = np.zeros((stages, matrices, rows, len(cfg.parts)), np.int64)
    tiles = tile_rows(rows, cfg.row_tile)
    expected = sum(-(-c // per) for c in tiles) * stages * matrices
    if len(payloads) != expected:
        raise ValueError(f"expected {expected} result beats, got {len(payloads)}")
    i = 0
    for r0, count in zip(range(0, rows, cfg.row_tile), tiles):
        for t in range(stages):
            for k in range(matrices):
                for b in range(-(-count // per)):
                    sums, _ = unpack_result(cfg, payloads[i])
                    i += 1
                    for g_ in range(min(per, count - b * per)):
                        out[t, k, r0 + b * per + g_] = sums[g_]
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
