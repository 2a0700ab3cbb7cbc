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
    The datapath never holds: its registers have no enable (a clock-enable net reaching every
    register of the array was the critical path on ECP5) and no reset; a slot's ``valid`` travels
    beside it, and the row accumulators take their sum only on valid slots. Flow control is by
    credits, at the door: a pass's *last* weight word, whose sums the root captures ``depth`` cycles
    later, is accepted only while one of the two tile slots of the :class:`ResultBuffer` is free
    (capture slot ``A``, drain slot ``B``), so a capture always finds ``A`` empty. Results leave
    ``group`` rows a beat through a registered output pipeline; a row tile of R rows needs
    ``ceil(R/group)`` beats, which must fit in the ``ceil(K/C)`` cycles of a pass for the array never
    to stall (:func:`fairyhw.hw.timing.array_cycles` counts the cycles exactly).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .buffer import KEEP, ActBuffer
from .sequencer import ArraySequencer, slot_layout
from .timing import output_stages, tree_depth, tree_levels

__all__ = ["PairPrep", "RowTrees", "ResultBuffer", "assemble"]


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
    The leaves (4:1 selects) feed the first adder level directly: on Xilinx one leaf of each adder
    shares the adder's LUT6 (four select inputs and the other operand: ``S = A xor leaf``), so a pair
    of leaves and their sum cost two LUTs a bit, not three. A register follows every ``tree_regs``
    adder levels and the root (a lone leaf, one or two columns, is registered). The registers have no enable and no reset (the pipeline never holds; a slot's
    validity travels beside it in the engine). Latency: :attr:`depth` cycles.
    """

    def __init__(self, *, cols: int, tree_regs: int):
        self._cols, self._tree_regs = cols, tree_regs
        n = _pairs(cols)
        vals = data.ArrayLayout(data.ArrayLayout(signed(9), 3), n)
        super().__init__({"h": In(cols), "x": In(cols), "pp": In(vals), "qq": In(vals),
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
                m.d.comb += leaf.eq(sel)
                level.append(leaf)
            if n == 1:
                leaf = Signal(signed(9), name=f"leaf{i}_r", reset_less=True)
                m.d.sync += leaf.eq(level[0])
                level = [leaf]
            depth = 0
            while len(level) > 1:
                depth += 1
                nxt = []
                for j in range(0, len(level), 2):
                    s = level[j] + level[j + 1] if j + 1 < len(level) else level[j]
                    if depth % self._tree_regs == 0 or len(level) <= 2:
                        r = Signal(signed(9 + depth), name=f"t{i}_{depth}_{j // 2}", reset_less=True)
                        m.d.sync += r.eq(s)
                        s = r
                    nxt.append(s)
                level = nxt
            m.d.comb += self.sums[i].eq(level[0])
        return m


class ResultBuffer(wiring.Component):
    """Two tile slots and the registered output pipeline of the array's results.

    ``cap`` writes a tile (the ``rows`` rows' accumulated ``(H_p, X_p, H_q, X_q)``, the shared
    ``(S_p, ., S_q, .)``, its row ``count``, ``final`` and ``conj``) into slot ``A``; the caller
    guarantees, by credits, that ``A`` is then empty or moving on. ``A`` moves to the drain slot ``B``
    when ``B`` is empty; ``B`` drains ``group`` rows a beat into the output pipeline, which forms the
    parts on the way (``Σap = S_p - H_p - X_p``, ``Σbp = X_p - H_p``, the same for ``q``, negated for
    ``conj(x)``; merged ``(Σap - Σbq, Σaq + Σbp)``) in free-running registers, into a FIFO that the
    ``res`` stream reads (:func:`~fairyhw.hw.timing.output_stages` counts the registers and the FIFO);
    ``B`` drains only while a FIFO place is free for the beat. ``freed`` pulses (a register) the
    cycle after a tile's last beat leaves ``B`` (a credit back to the sequencer); ``idle`` when nothing is held.
    """

    def __init__(self, *, rows: int, group: int, acc_width: int, accumulate: str):
        self._rows, self._group, self._w, self._accumulate = rows, group, acc_width, accumulate
        self._acc = data.ArrayLayout(signed(acc_width), 4)
        parts = 4 if accumulate == "split" else 2
        res = data.StructLayout({"sums": data.ArrayLayout(data.ArrayLayout(signed(acc_width), parts),
                                                          group), "last": 1})
        super().__init__({"cap": In(1), "tile": In(data.ArrayLayout(self._acc, rows)),
                          "shared": In(self._acc), "count": In(range(rows + 1)), "final": In(1),
                          "conj": In(1), "res": Out(stream.Signature(res)),
                          "freed": Out(1), "idle": Out(1)})

    def elaborate(self, platform):
        m = Module()
        R, G, w = self._rows, self._group, self._w
        nbeats = -(-R // G)
        acc_l = self._acc

        def regs(n, name, shape=acc_l):
            return [Signal(shape, name=f"{name}{i}", reset_less=True) for i in range(n)]

        # slot A: the captured tile
        a_rows, (a_shared,) = regs(R, "a_row"), regs(1, "a_shared")
        a_count = Signal(range(R + 1), reset_less=True)
        a_final, a_conj = Signal(reset_less=True), Signal(reset_less=True)
        a_full = Signal()
        # slot B: the tile draining, `group` rows a beat
        b_rows, (b_shared,) = regs(R, "b_row"), regs(1, "b_shared")
        b_final, b_conj = Signal(reset_less=True), Signal(reset_less=True)
        b_left = Signal(range(R + 1))              # rows still to drain
        b_beat = Signal(range(max(nbeats, 2)), reset_less=True)
        # `move` (A into B) a register, decided a cycle ahead from the next values of what it reads:
        # it enables every register of slot B, and as a LUT of a_full and b_left placed among them
        # the loop b_left -> a_full -> b_left's enable paid three routes (127 MHz at 4 x 128)
        move = Signal()
        b_empty = Signal(init=1)                   # == (b_left == 0)
        drain_end = Signal()                       # B's last beat drains this cycle
        with m.If(self.cap):
            m.d.sync += [a_rows[r].eq(self.tile[r]) for r in range(R)]
            m.d.sync += [a_shared.eq(self.shared), a_count.eq(self.count), a_final.eq(self.final),
                         a_conj.eq(self.conj), a_full.eq(1)]
        with m.Elif(move):
            m.d.sync += a_full.eq(0)
        with m.If(move):
            m.d.sync += [b_rows[r].eq(a_rows[r]) for r in range(R)]
            m.d.sync += [b_shared.eq(a_shared), b_final.eq(a_final), b_conj.eq(a_conj),
                         b_left.eq(a_count), b_beat.eq(0)]

        # the output pipeline runs free (no enable: an enable from the stream's handshake reaching every
        # output register was the ECP5 critical path at 104.3 MHz, 4 x 128); its beats land in a FIFO
        # of `output_stages + 2` entries, and B drains only while a FIFO place is free for the beat
        # (a credit counter), so the stream's back-pressure stops the drain and nothing else
        nst = output_stages(self._accumulate) - 1
        depth = nst + 2
        valid = [Signal(name=f"o{i}_valid") for i in range(nst)]
        last = [Signal(name=f"o{i}_last", reset_less=True) for i in range(nst)]
        space = Signal(range(depth + 1), init=depth)
        drain = ~b_empty & (space != 0)
        beat_last = b_left <= G
        m.d.comb += drain_end.eq(drain & beat_last)
        with m.If(drain):
            m.d.sync += [b_left.eq(Mux(beat_last, 0, b_left - G)), b_beat.eq(b_beat + 1)]
        # the next cycle's A is full (captured, or full and not moving) and B empty (empty and not
        # filled, or its last beat draining)
        m.d.sync += [move.eq(~move & (self.cap | a_full) & (b_empty | drain_end)),
                     b_empty.eq(~move & (b_empty | drain_end))]
        m.d.sync += [valid[0].eq(drain), last[0].eq(b_final & beat_last)]
        m.d.sync += [valid[i].eq(valid[i - 1]) for i in range(1, nst)]
        m.d.sync += [last[i].eq(last[i - 1]) for i in range(1, nst)]
        zero = Const(0, acc_l.size)
        groups = Array(Signal(data.ArrayLayout(acc_l, G), name=f"group{b}") for b in range(nbeats))
        for b in range(nbeats):
            m.d.comb += [groups[b][g].eq(b_rows[b * G + g] if b * G + g < R else zero) for g in range(G)]

        def sreg(name):
            return Signal(signed(w), name=name, reset_less=True)

        # o0: the beat's rows selected from B into registers, S_p, S_q and conj beside them (the
        # select's LUTs straight into the first adders were the ECP5 critical path at 4 x 128:
        # 147.4 MHz, b_beat -> the 4:1 select -> a 1.4 ns route -> the adder)
        front = Signal(data.ArrayLayout(acc_l, G), name="o0_rows", reset_less=True)
        s_p0, s_q0, conj0 = sreg("o0_sp"), sreg("o0_sq"), Signal(reset_less=True)
        m.d.sync += [front.eq(groups[b_beat]), s_p0.eq(b_shared[0]), s_q0.eq(b_shared[2]),
                     conj0.eq(b_conj)]
        # o1: per row u = H + X and d = X - H of each part; S_p, S_q and conj beside them
        s_p, s_q, conj1 = sreg("o1_sp"), sreg("o1_sq"), Signal(reset_less=True)
        o1 = [[sreg(f"o1_{nm}{g}") for nm in ("up", "bp", "uq", "dq")] for g in range(G)]
        m.d.sync += [s_p.eq(s_p0), s_q.eq(s_q0), conj1.eq(conj0)]
        for g in range(G):
            hp, xp, hq, xq = (front[g][i] for i in range(4))
            m.d.sync += [o1[g][0].eq(hp + xp), o1[g][1].eq(xp - hp),
                         o1[g][2].eq(hq + xq), o1[g][3].eq(xq - hq)]
        # o2: Σap = S_p - u_p, Σbp, and the q parts negated for conj(x)
        o2 = [[sreg(f"o2_{nm}{g}") for nm in ("ap", "aq", "bp", "bq")] for g in range(G)]
        for g in range(G):
            up, bp, uq, dq = o1[g]
            m.d.sync += [o2[g][0].eq(s_p - up), o2[g][1].eq(Mux(conj1, uq - s_q, s_q - uq)),
                         o2[g][2].eq(bp), o2[g][3].eq(Mux(conj1, -dq, dq))]
        if self._accumulate == "split":
            out = o2
        else:   # o3: the merged accumulator's (re, im) = (Σap - Σbq, Σaq + Σbp)
            out = [[sreg(f"o3_{nm}{g}") for nm in ("re", "im")] for g in range(G)]
            for g in range(G):
                ap, aq, bp, bq = o2[g]
                m.d.sync += [out[g][0].eq(ap - bq), out[g][1].eq(aq + bp)]
        res_l = self.res.payload.shape()
        fifo = m.submodules.fifo = SyncFIFO(width=res_l.size, depth=depth)
        beat = Signal(res_l)
        m.d.comb += beat.last.eq(last[-1])
        for g in range(G):
            m.d.comb += [beat.sums[g][i].eq(v) for i, v in enumerate(out[g])]
        m.d.comb += [fifo.w_stream.valid.eq(valid[-1]), fifo.w_stream.payload.eq(beat)]
        pop = self.res.valid & self.res.ready
        freed = Signal()                           # a register: the sequencer's credits are far away
        m.d.sync += freed.eq(drain_end)
        m.d.sync += space.eq(space - drain + pop)
        m.d.comb += [self.res.valid.eq(fifo.r_stream.valid), self.res.payload.eq(fifo.r_stream.payload),
                     fifo.r_stream.ready.eq(self.res.ready),
                     self.freed.eq(freed),
                     self.idle.eq(~a_full & b_empty & ~freed & (space == depth))]
        return m



def assemble(engine) -> Module:
    """The array style of ``engine`` (an :class:`~fairyhw.hw.engine.Engine`): the sequencer, the
    buffer, the shared pair values, a tree per row and one for the shared sums, the root accumulators
    and the result buffer, joined by a pipeline whose slots carry their control
    (:func:`~fairyhw.hw.sequencer.slot_layout`) beside the data. :func:`fairyhw.hw.timing.array_depth`
    counts its registers."""
    cfg = engine.config
    m = Module()
    R, C = cfg.rows, cfg.cols
    seq = m.submodules.sequencer = ArraySequencer(cfg)
    buf = m.submodules.buffer = ActBuffer(cfg)
    wiring.connect(m, wiring.flipped(engine.cmd), seq.cmd)
    wiring.connect(m, wiring.flipped(engine.act), seq.act)
    wiring.connect(m, seq.load, buf.load)
    m.d.comb += [buf.clear.eq(seq.clear), buf.raddr.eq(seq.chunk), seq.wgt_valid.eq(engine.wgt.valid),
                 engine.wgt.ready.eq(seq.wgt_ready), engine.busy.eq(seq.busy)]

    def stage(src, name):
        """The control one pipeline register later."""
        dst = Signal(slot_layout(R), name=name)
        m.d.sync += dst.eq(src)
        return dst

    # stage 1: the word (captured every cycle; the slot's `valid` says whether it was taken); stages
    # 1b, 1a, 1r while the buffer reads its chunk (ActBuffer.READ_DELAY)
    pipe = [seq.slot]
    codes = [Signal(2 * R * C, name="s1_codes", reset_less=True)]
    m.d.sync += codes[0].eq(engine.wgt.payload)
    for i in range(ActBuffer.READ_DELAY - 1):
        name = f"s1_{i + 1}"
        pipe.append(stage(pipe[-1], name))
        codes.append(Signal(2 * R * C, name=f"{name}_codes", reset_less=True))
        m.d.sync += codes[-1].eq(codes[-2])

    # stage 2: shared pair values and the plane bits, registered
    prep = m.submodules.prep = PairPrep(cols=C)
    for c in range(C):
        x = buf.rdata[16 * c:16 * c + 16]
        m.d.comb += [prep.p[c].eq(x[0:8].as_signed()), prep.q[c].eq(x[8:16].as_signed())]
    pp = Signal.like(prep.pp, reset_less=True)
    qq = Signal.like(prep.qq, reset_less=True)
    h = [Signal(C, name=f"h{r}", reset_less=True) for r in range(R)]
    xb = [Signal(C, name=f"x{r}", reset_less=True) for r in range(R)]
    m.d.sync += [pp.eq(prep.pp), qq.eq(prep.qq)]
    for r in range(R):
        for c in range(C):
            # the word carries (h, x) per weight (the host's Gray code of the code)
            m.d.sync += [h[r][c].eq(codes[-1][2 * (r * C + c) + 1]), xb[r][c].eq(codes[-1][2 * (r * C + c)])]
    pipe.append(stage(pipe[-1], "s2"))

    # the row trees and the shared sums S_p, S_q (a tree whose h plane is all ones)
    trees = []
    for r in range(R + 1):
        t = m.submodules[f"row{r}" if r < R else "shared"] = RowTrees(cols=C, tree_regs=cfg.tree_regs)
        m.d.comb += [t.pp.eq(pp), t.qq.eq(qq)]
        if r < R:
            m.d.comb += [t.h.eq(h[r]), t.x.eq(xb[r])]
        else:
            m.d.comb += [t.h.eq((1 << C) - 1), t.x.eq(0)]
        trees.append(t)
    for i in range(trees[0].depth):
        pipe.append(stage(pipe[-1], f"st{i}"))
    tail = pipe[-1]
    # each root's four accumulators' `first` and `valid` from registers of their own beside them
    # (equal to the tail's): one register reaching every root's accumulators was the ECP5 critical
    # path at 4 x 128 (a 5.0 ns route), and one a root reaching its four (3.2 ns)
    roots = []
    for r in range(R + 1):
        firsts = [Signal(name=f"root{r}_first{i}", attrs=KEEP) for i in range(4)]
        valids = [Signal(name=f"root{r}_valid{i}", attrs=KEEP) for i in range(4)]
        m.d.sync += [x.eq(pipe[-2].first) for x in firsts] + [x.eq(pipe[-2].valid) for x in valids]
        roots.append((firsts, valids))

    # the root: each row accumulates its four gated sums over the chunks (the first chunk of a pass
    # starts from zero, so no reset is needed), the shared S_p, S_q once; a pass's last chunk hands
    # the totals to the result buffer
    acc_l = data.ArrayLayout(signed(engine.acc_width), 4)
    res = m.submodules.results = ResultBuffer(rows=R, group=cfg.group, acc_width=engine.acc_width,
                                              accumulate=cfg.accumulate)
    for r in range(R + 1):
        acc = Signal(acc_l, name=f"acc{r}", reset_less=True)
        tot = Signal(acc_l, name=f"total{r}")
        firsts, valids = roots[r]
        for i in range(4):
            m.d.comb += tot[i].eq(Mux(firsts[i], 0, acc[i]) + trees[r].sums[i])
            with m.If(valids[i]):
                m.d.sync += acc[i].eq(tot[i])
        m.d.comb += (res.tile[r] if r < R else res.shared).eq(tot)
    m.d.comb += [res.cap.eq(tail.last), res.count.eq(tail.count), res.final.eq(tail.final),
                 res.conj.eq(tail.conj)]
    wiring.connect(m, wiring.flipped(engine.res), res.res)
    m.d.comb += [seq.freed.eq(res.freed),
                 seq.drained.eq(~Cat(*(st.valid for st in pipe)).any() & res.idle)]
    return m
