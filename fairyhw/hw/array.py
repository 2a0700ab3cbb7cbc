"""The two-dimensional array style: R rows x C columns of multiplier-free complex MACs.

Datapath (one weight word of ``2*R*C`` bits a cycle)
    The activation buffer is ``C`` banks wide: one read gives the ``C`` activations of a chunk of the
    input, broadcast down the columns to every row. A code's two bits give two bit planes,
    ``h`` (its high bit) and ``x = h xor l``, with ``a = 1 - h - x`` and ``b = x - h`` (``i**code = a +
    i b``), so each row needs only four AND-gated sums, ``H_p = Σ h p``, ``X_p = Σ x p``, ``H_q``,
    ``X_q``, plus ``S_p = Σ p`` and ``S_q = Σ q``, which every row shares::

        Σ a p = S_p - H_p - X_p        Σ b p = X_p - H_p        (the same for q)

    Columns are taken in pairs: for each pair the sums ``0, v0, v1, v0 + v1`` of each part (``p``,
    ``q``) are formed once for all rows (:class:`PairPrep`), so each row's leaf is a 4:1 select by the
    pair's two plane bits (one LUT6 a bit) over half as many leaves, then a pipelined adder tree
    (:class:`RowTrees`, a register after every ``tree_regs`` levels). The row's root forms the four
    sums, applies the conjugate (W passes negate ``q``), merges them for merged accumulators, and
    accumulates over the ``ceil(K/C)`` chunks of the input: only the root is wide, and there are no
    per-MAC accumulators.

Pipeline and flow control
    Every stage register advances together on ``adv``; the pipeline holds only when a pass's final
    sums reach the root while the result register still drains the previous pass. Results leave
    ``group`` rows a beat, so a row tile of R rows needs ``ceil(R/group)`` beats, which must fit in the
    ``ceil(K/C)`` cycles of the next pass for the array never to stall.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .timing import tree_depth, tree_levels

__all__ = ["PairPrep", "RowTrees"]


def _pairs(cols: int) -> int:
    return (cols + 1) // 2


class PairPrep(wiring.Component):
    """Per pair of columns, ``v0, v1, v0 + v1`` of ``p`` and of ``q`` (combinational, shared by all
    rows; an odd last column has ``v1 = 0``)."""

    def __init__(self, *, cols: int):
        self._cols = cols
        n = _pairs(cols)
        vals = data.ArrayLayout(data.ArrayLayout(signed(9), 3), n)
        super().__init__({"p": In(data.ArrayLayout(signed(8), cols)),
                          "q": In(data.ArrayLayout(signed(8), cols)),
                          "pp": Out(vals), "qq": Out(vals)})

    def elaborate(self, platform):
        m = Module()
        for src, dst in ((self.p, self.pp), (self.q, self.qq)):
            for k in range(_pairs(self._cols)):
                v0 = src[2 * k]
                v1 = src[2 * k + 1] if 2 * k + 1 < self._cols else 0
                m.d.comb += [dst[k][0].eq(v0), dst[k][1].eq(v1), dst[k][2].eq(v0 + v1)]
        return m


class RowTrees(wiring.Component):
    """One row's four gated sums ``(H_p, X_p, H_q, X_q)`` over ``cols`` columns, pipelined.

    Inputs (registered by the caller): the row's plane bits ``h``, ``x`` and the shared pair values.
    The leaves (4:1 selects) are registered, then a register follows every ``tree_regs`` adder levels
    and the root; ``en`` advances every register. Latency: :attr:`depth` cycles.
    """

    def __init__(self, *, cols: int, tree_regs: int):
        self._cols, self._tree_regs = cols, tree_regs
        n = _pairs(cols)
        vals = data.ArrayLayout(data.ArrayLayout(signed(9), 3), n)
        super().__init__({"en": In(1), "h": In(cols), "x": In(cols), "pp": In(vals), "qq": In(vals),
                          "sums": Out(data.ArrayLayout(signed(self.sum_width), 4))})

    @property
    def sum_width(self) -> int:
        return 9 + tree_levels(self._cols)

    @property
    def depth(self) -> int:
        """Registers from the inputs to ``sums`` (:func:`fairyhw.hw.timing.tree_depth`)."""
        return tree_depth(self._cols, self._tree_regs)

    def elaborate(self, platform):
        m = Module()
        n = _pairs(self._cols)
        for i, (plane, vals) in enumerate(((self.h, self.pp), (self.x, self.pp),
                                           (self.h, self.qq), (self.x, self.qq))):
            level = []
            for k in range(n):
                b0 = plane[2 * k]
                leaf = Signal(signed(9), name=f"leaf{i}_{k}")
                if 2 * k + 1 < self._cols:
                    b1 = plane[2 * k + 1]
                    sel = Mux(b1, Mux(b0, vals[k][2], vals[k][1]), Mux(b0, vals[k][0], 0))
                else:
                    sel = Mux(b0, vals[k][0], 0)
                with m.If(self.en):
                    m.d.sync += leaf.eq(sel)
                level.append(leaf)
            depth = 0
            while len(level) > 1:
                depth += 1
                nxt = []
                for j in range(0, len(level), 2):
                    s = level[j] + level[j + 1] if j + 1 < len(level) else level[j]
                    if depth % self._tree_regs == 0 or len(level) <= 2:
                        r = Signal(signed(9 + depth), name=f"t{i}_{depth}_{j // 2}")
                        with m.If(self.en):
                            m.d.sync += r.eq(s)
                        s = r
                    nxt.append(s)
                level = nxt
            m.d.comb += self.sums[i].eq(level[0])
        return m
