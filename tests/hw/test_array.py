"""The array style in Amaranth's simulator: every shape, mode and accumulator style against the golden
integer sums, the latency function's cycles exactly, stalls, and the array stream layout."""

import numpy as np
import pytest
import torch

from fairyhw.hw.config import EngineConfig
from fairyhw.hw.driver import ref_results
from fairyhw.hw.engine import Engine
from fairyhw.hw.simulate import rtl_engine
from fairyhw.hw.timing import CREDIT_DELAY, array_depth, latency, output_stages, result_beats
from fairyhw.model.pack import GRAY, stream_words_array, unpack_codes
from tests.hw.test_engine import layer


@pytest.mark.parametrize("rows, cols, group, tree_regs, accumulate, mode, stages", [
    (1, 1, 1, 1, "split", "fairy2i", 1), (2, 4, 1, 1, "split", "fairy2i", 2),
    (3, 5, 2, 2, "merged", "fairy2i", 2), (1, 8, 1, 1, "split", "ifairy", 1),
    (4, 4, 3, 1, "split", "fairy2i", 2), (2, 3, 2, 3, "merged", "ifairy", 3),
    (5, 7, 1, 2, "split", "fairy2i", 1), (1, 16, 1, 4, "merged", "fairy2i", 2)])
def test_array_against_golden(rows, cols, group, tree_regs, accumulate, mode, stages):
    eng = Engine(lanes=rows * cols, rows=rows, cols=cols, group=group, tree_regs=tree_regs,
                 accumulate=accumulate, mode=mode, stages=stages, max_in=40, max_out=40)
    m = len(eng.matrices)
    shapes = [(rows, 1), (2 * rows + 1, 7), (1, 40), (min(40, 3 * rows + 2), cols + 3), (rows, cols)]
    layers = [layer(r, k, stages, m, seed=i) for i, (r, k) in enumerate(shapes)]
    layers.append(layer(3, 40, stages, m, 0, extreme=3))
    runs = rtl_engine(eng, layers)
    for run, (mats, p, q) in zip(runs, layers):
        assert torch.equal(run.sums, ref_results(mats, p, q, mode=mode, accumulate=accumulate))
        n, k = mats[0][0].shape
        assert run.cycles == eng.latency(k, n) == latency(eng.config, k, n)
        assert len(run.lasts) == result_beats(eng.config, n)
        assert run.lasts == [0] * (len(run.lasts) - 1) + [1]


@pytest.mark.parametrize("code", [0, 1, 2, 3])
def test_array_extremes_fit_accumulators(code):
    eng = Engine(lanes=6, rows=2, cols=3, max_in=64, max_out=8, stages=1)
    mats, p, q = layer(3, 64, 1, 2, 0, extreme=code)
    run, = rtl_engine(eng, [(mats, p, q)])
    assert torch.equal(run.sums, ref_results(mats, p, q))
    assert int(run.sums.abs().max()) == 128 * 64


@pytest.mark.parametrize("cols", [4, 3])    # the zero flags' two forms: C a power of two or not
def test_array_ignores_act_padding(cols):
    """The last act beat's elements past K are not zero here: the sums must not see them."""
    eng = Engine(lanes=3 * cols, rows=3, cols=cols, max_in=16, max_out=16, stages=1)
    layers = [layer(5, k, 1, 2, seed=k) for k in (1, 3, 4, 6, 8, 9)]
    for run, (mats, p, q) in zip(rtl_engine(eng, layers, pad=0x807F), layers):
        assert torch.equal(run.sums, ref_results(mats, p, q))


def test_array_stalls_in_amaranth_sim():
    eng = Engine(lanes=12, rows=3, cols=4, group=2, max_in=16, max_out=16, stages=2)
    layers = [layer(9, 6, 2, 2, seed=s) for s in range(3)] + [layer(7, 1, 2, 2, seed=9)]
    runs = rtl_engine(eng, layers, idle=0.4, backpressure=0.5, seed=9)
    for run, (mats, p, q) in zip(runs, layers):
        assert torch.equal(run.sums, ref_results(mats, p, q))
        rows, k = mats[0][0].shape
        assert run.cycles > eng.latency(k, rows)


def test_array_latency_small_cases():
    """cmd and its registered start + n act beats + the last beat's write and its notice + n words a pass + depth to the root + the move to
    the drain slot + the drain + the output registers and FIFO; a pass's last word waits for a credit."""
    cfg = EngineConfig(lanes=8, rows=2, cols=4, max_in=64, max_out=64, stages=1, mode="ifairy")
    d = array_depth(cfg)           # 7 (the word and 5 more while the buffer reads, the pair values) + 1 tree level (2 pairs, unregistered leaves)
    assert d == 8
    o = output_stages("split")
    assert o == 4 and output_stages("merged") == 5
    # K = 8: n = 2 act beats and 2 words a pass; 2 rows: one pass; 2 result beats
    assert latency(cfg, 8, 2) == 2 + 2 + 2 + 2 + d + 1 + 2 + o
    # 4 rows: two passes; the second tile moves to the drain slot the cycle after the first's last
    # beat, 3 cycles after the first tile's move
    assert latency(cfg, 8, 4) == latency(cfg, 8, 2) + 3
    # K = 1: one word a pass, fewer than the two result beats of a tile
    assert latency(cfg, 1, 2) == 2 + 1 + 2 + 1 + d + 1 + 2 + o
    assert latency(cfg, 1, 4) == latency(cfg, 1, 2) + 3
    # 6 rows: the third pass's (last) word waits for the first tile's credit: it is accepted
    # CREDIT_DELAY (2) cycles after that tile's last beat, and its tile moves d + 1 cycles later,
    # d + 2 cycles after the second tile's last beat (one beat after the first's)
    assert CREDIT_DELAY == 2
    assert latency(cfg, 1, 6) == latency(cfg, 1, 4) + d + 2


def test_array_stream_layout():
    """Field r*cols + c of a word holds the Gray code (h, x) of row r0 + r, column chunk*cols + c."""
    g = torch.Generator().manual_seed(1)
    mats = [[torch.randint(0, 4, (5, 7), generator=g, dtype=torch.uint8) for _ in range(2)]]
    words = stream_words_array(mats, 2, 3)
    tiles, chunks = 3, 3
    assert words.shape == (tiles * 1 * 2 * chunks, 2)        # 6 fields a word: 2 bytes
    fields = unpack_codes(words, 6).reshape(tiles, 2, chunks, 2, 3)
    for tile in range(tiles):
        for k in range(2):
            for ch in range(chunks):
                for r in range(2):
                    for c in range(3):
                        row, col = tile * 2 + r, ch * 3 + c
                        want = GRAY[int(mats[0][k][row, col])] if row < 5 and col < 7 else 0
                        assert fields[tile, k, ch, r, c] == want
    code = np.arange(4)
    assert list(GRAY) == [0, 1, 3, 2]
    assert np.all(GRAY >> 1 == code >> 1) and np.all(GRAY & 1 == (code >> 1) ^ (code & 1))


def test_array_full_buffer():
    """K = max_in with a power-of-two buffer depth: the load address wraps to zero after the last
    beat, and the last chunk is still found."""
    eng = Engine(lanes=8, rows=2, cols=4, max_in=16, max_out=8, stages=1)
    layers = [layer(3, 16, 1, 2, seed=1), layer(2, 4, 1, 2, seed=2)]
    for run, (mats, p, q) in zip(rtl_engine(eng, layers), layers):
        assert torch.equal(run.sums, ref_results(mats, p, q))
        rows, k = mats[0][0].shape
        assert run.cycles == eng.latency(k, rows)
