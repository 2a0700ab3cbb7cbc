"""Code packing, the engine stream layout and $readmemh images."""

import numpy as np
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from fairyhw.model.pack import (pack_codes, read_memh, stream_words, unpack_codes, unstream_words,
                          write_memh)

codes = hnp.arrays(np.uint8, st.tuples(st.integers(1, 5), st.integers(1, 40)),
                   elements=st.integers(0, 3))


@given(codes)
def test_pack_unpack_identity(c):
    p = pack_codes(c)
    assert p.shape == (c.shape[0], -(-c.shape[1] // 4))
    assert np.array_equal(unpack_codes(p, c.shape[1]), c)


def test_bit_order_by_hand():
    assert pack_codes(np.array([1, 2, 3, 0, 3], np.uint8)).tolist() == [0b00111001, 0b11]


@settings(deadline=None, max_examples=40)
@given(n=st.integers(1, 9), m=st.integers(1, 7), stages=st.integers(1, 3), per_t=st.integers(1, 2),
       lanes=st.integers(1, 12), seed=st.integers(0, 2**31))
def test_stream_and_memh_round_trip(tmp_path_factory, n, m, stages, per_t, lanes, seed):
    rng = np.random.default_rng(seed)
    mats = [[torch.from_numpy(rng.integers(0, 4, (n, m), dtype=np.uint8)) for _ in range(per_t)]
            for _ in range(stages)]
    words = stream_words(mats, lanes)
    assert words.shape == (-(-n // lanes) * stages * per_t * m, -(-lanes // 4))
    back = unstream_words(words, lanes, n, m, stages, per_t)
    assert all(torch.equal(a, b) for x, y in zip(mats, back) for a, b in zip(x, y))
    path = tmp_path_factory.mktemp("memh") / "w.memh"
    write_memh(path, words, lanes)
    assert np.array_equal(read_memh(path, lanes), words)


def test_memh_text_layout(tmp_path):
    # 2 rows, 3 columns, lanes 2, one stage, U and W: words are (U col0..2, W col0..2) of 4 bits.
    u = torch.tensor([[0, 1, 2], [3, 0, 1]], dtype=torch.uint8)
    w = torch.tensor([[2, 2, 2], [1, 1, 1]], dtype=torch.uint8)
    words = stream_words([[u, w]], 2)
    write_memh(tmp_path / "x.memh", words, 2)
    # lane 0 = row 0 in bits [1:0], lane 1 = row 1 in bits [3:2]
    assert (tmp_path / "x.memh").read_text() == "c\n1\n6\n6\n6\n6\n"
