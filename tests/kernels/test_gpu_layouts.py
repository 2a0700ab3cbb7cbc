"""The binary-MMA kernel's layouts (``pack_codes_b1``, ``activation_bits``), checked on the CPU: a
reference of the kernel's arithmetic (per chunk of 256 codes, AND + POPC of each code bit plane with
each activation bit plane, weighted 2^b and -2^7 for the sign plane) on the laid-out words gives the
golden integer sums exactly."""

import pytest
import torch

from fairyhw.kernels.gpu.kernel import activation_bits, pack_codes_b1, pack_codes_i32
from fairyhw.model import golden as g


def _bits(words: torch.Tensor) -> torch.Tensor:
    return (words.unsqueeze(-1).to(torch.int64) >> torch.arange(32)) & 1


def test_bit_plane_layouts_give_the_golden_sums():
    gen = torch.Generator().manual_seed(3)
    mats, n, m = 4, 21, 600                  # 600 inputs: the last chunk of 256 codes is padded
    codes = torch.randint(0, 4, (mats, n, m), dtype=torch.uint8, generator=gen)
    p = torch.randint(-128, 128, (1, m), dtype=torch.int8, generator=gen)
    q = torch.randint(-128, 128, (1, m), dtype=torch.int8, generator=gen)
    ref = torch.stack([g.integer_sums(codes[k], p, q, conj=k % 2 == 1) for k in range(mats)], dim=1)
    ci = pack_codes_i32(codes)
    cb = pack_codes_b1(ci, rows_at_once=5)   # several row batches
    act, sums = activation_bits(p, q, ci.shape[-1])
    c = cb.shape[-1] // 16
    assert cb.shape == (mats, n, 16 * c) and act.shape == (1, 2, c, 64) and c == 3
    # read the tiles as the kernels do: a whole tile's chunk is 32 lanes' h fragments, then their x
    # fragments, lane (g, t)'s fragment (word t of rows g and g + 8, then word t + 4 of both), which
    # is put back into rows here; the last tile (84 % 16 = 4 rows) chunk by chunk, row by row
    flat, rows = cb.reshape(mats * n, c, 16), []
    for t0 in range(0, mats * n, 16):
        nr = min(16, mats * n - t0)
        if nr == 16:        # (chunk, h or x, g, t, word t or t + 4, row g or g + 8)
            frag = flat[t0:t0 + 16].reshape(c, 2, 8, 4, 2, 2)
            rows.append(frag.permute(5, 2, 0, 3, 1, 4).reshape(16, c, 16))
        else:
            rows.append(flat[t0:t0 + nr].reshape(c, nr, 16).transpose(0, 1))
    v = torch.cat(rows).view(mats, n, c, 4, 4)   # vector t = (h_t, h_t+4, x_t, x_t+4)
    h = _bits(torch.cat([v[..., 0], v[..., 1]], -1)).reshape(mats, n, 256 * c)
    x = _bits(torch.cat([v[..., 2], v[..., 3]], -1)).reshape(mats, n, 256 * c)
    # activations: (p or q, chunk, plane g, words t and t + 4 of lane t) -> plane, chunk, word
    a = _bits(act.view(2, c, 8, 4, 2).permute(0, 2, 1, 4, 3).reshape(2, 8, c, 8)).reshape(2, 8, 256 * c)
    weight = torch.tensor([1, 2, 4, 8, 16, 32, 64, -128])
    hp, hq, xp, xq = [(torch.einsum("mnk,bk->mnb", plane, a[z]) * weight).sum(-1)
                      for plane in (h, x) for z in (0, 1)]
    sp, sq = sums[0].tolist()
    ap, aq, bp, bq = sp - hp - xp, sq - hq - xq, xp - hp, xq - hq
    odd = (torch.arange(mats) % 2 == 1).view(mats, 1)
    got = torch.stack([ap, torch.where(odd, -aq, aq), bp, torch.where(odd, -bq, bq)], -1)
    assert torch.equal(got.unsqueeze(0).long(), ref.long())


def test_row_matrix_multiplier_is_a_division():
    """The binary kernels' epilogue finds a row's matrix as ``(r * nmul) >> 40`` (a 64-bit product):
    equal to ``r // n`` for every row below its bounds, for the LLaMA-2 7B and SmolLM2 row counts
    (complex rows: half the real), small and odd counts; and at the bounds, the last row of each of
    the last 2,000 matrices (Python integers)."""
    from fairyhw.kernels.gpu.kernel import ROW_MATRIX_BOUND, ROW_MATRIX_SHIFT, row_matrix_multiplier
    for n in [1, 2, 3, 7, 16, 17, 255, 288, 480, 768, 1536, 2048, 5504, 16000, 24576, 65535, 99991]:
        nmul = row_matrix_multiplier(n)
        r = torch.arange(64 * n, dtype=torch.int64)
        assert torch.equal((r * nmul) >> ROW_MATRIX_SHIFT, r // n), n
        # rows r with r * n < ROW_MATRIX_BOUND and r * nmul < 2**64 (the kernel's checks)
        top = min((ROW_MATRIX_BOUND - 1) // n, (2 ** 64 - 1) // nmul)
        k_top = (top - (n - 1)) // n
        for k in range(max(0, k_top - 2000), k_top + 1):
            row = k * n + n - 1
            assert (row * nmul) >> ROW_MATRIX_SHIFT == k, (n, row)
            if row + 1 <= top:                   # and the first row of the next matrix
                assert ((row + 1) * nmul) >> ROW_MATRIX_SHIFT == k + 1, (n, row + 1)


def test_row_matrix_multiplier_range_is_checked():
    """The kernels' launches take the multiplier through one check: layers whose rows are beyond its
    exact range (rows x rows a matrix >= 2**40) are refused with a ValueError naming the kernel."""
    from fairyhw.kernels.gpu.kernel import checked_row_matrix_multiplier, row_matrix_multiplier
    assert checked_row_matrix_multiplier(4, 5504, "streaming kernel") == row_matrix_multiplier(5504)
    assert checked_row_matrix_multiplier(1, 2 ** 20 - 1, "x") == row_matrix_multiplier(2 ** 20 - 1)
    for mats, n in [(4, 2 ** 19), (1, 2 ** 20), (1000, 40000)]:
        with pytest.raises(ValueError, match="beyond the streaming kernel's row arithmetic"):
            checked_row_matrix_multiplier(mats, n, "streaming kernel")
