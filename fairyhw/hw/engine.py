"""The multiplier-free complex MAC array and the engine that runs one quantized layer on it.

Architecture (output-stationary, broadcast activation)
    The engine buffers the layer's input vector (complex int8, ``K`` elements) in an on-chip memory,
    then streams the weight codes: one word of ``LANES`` codes per cycle, lane ``l`` owning output row
    ``r0 + l`` of the current row tile. Each cycle one buffered activation is broadcast to every lane and
    each lane adds ±p, ±q (or a swapped pair, for merged accumulators) into its accumulators: adders,
    negations and multiplexers only. A *pass* is one (row tile, stage, matrix) triple of ``K`` cycles;
    at its end the lanes' sums move to a shadow register that drains on the result stream, one row per
    beat, while the next pass accumulates.

Second lane style (``lane_style="dot"``: dot-product lanes with an adder tree)
    The ``LANES`` lanes split one row's input instead: the activation buffer is ``LANES`` banks wide, a
    weight word holds ``LANES`` codes of *one* row (columns ``c*LANES .. c*LANES+LANES-1``), every lane
    selects its term from its own activation, an adder tree sums the terms, and one accumulator per sum
    part adds the tree's output over the row's ``ceil(K/LANES)`` chunks. No per-lane accumulators and no
    shadow register; one result per (row, stage, matrix) pass.

Integer contract (``docs/design.md``, :mod:`fairyhw.model.golden`)
    Split accumulators give, per row and pass, ``(Σap, Σaq, Σbp, Σbq)`` exactly as
    :func:`fairyhw.model.golden.integer_sums`; merged ones give :func:`fairyhw.model.golden.merge_sums` of them.
    For the W matrix (and every Fairy±i pass) the engine computes on ``conj(x)``. Scales are applied on
    the host (:func:`fairyhw.hw.driver.rescale_results`).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import ACCUMULATE, BANK_COLS, COPY_FANOUT, EngineConfig, check_int
from .streams import ACT_LAYOUT, act_layout, cmd_layout, res_layout, sums_layout, wgt_shape
from .timing import latency, result_beats

__all__ = ["ACT_LAYOUT", "Lane", "DotLane", "Engine"]

#: The attribute of a register that copies another so that each copy sits beside what it drives:
#: synthesis must not merge the copies back into one register (fairyhw's Yosys flow puts ``keep``
#: on the flip-flops of wires that carry it; other tools honour it on the register, or have a
#: setting to keep equivalent registers).
KEEP = {"keep": 1}

#: One complex int8 activation: ``x = sr*p + i*si*q``.

class Lane(wiring.Component):
    """One MAC lane: per enabled cycle, one 2-bit code selects a term from a broadcast activation.

    The engine broadcasts ``p``, ``np = -p``, ``q`` and ``nq = -q`` (9-bit; ``q`` already conjugated
    for W passes), negated once for all lanes, so a lane is multiplexers and one adder per sum.
    ``total`` is the combinational sum including this cycle's term; on ``en`` the accumulators take it,
    or clear to zero when ``last`` is set (the engine captures ``total`` then).

    Split: code 0 adds (p, q) to (Σap, Σaq), code 2 adds (-p, -q), code 1 adds (p, q) to (Σbp, Σbq),
    code 3 adds (-p, -q). Merged: the term is ``i**code * (p + i q)``: (p, q), (-q, p), (-p, -q), (q, -p).
    """

    def __init__(self, *, acc_width: int, accumulate: str = "split"):
        check_int("Accumulator width", acc_width, 9, 64)
        if accumulate not in ACCUMULATE:
            raise ValueError(f"Accumulator style must be one of {', '.join(ACCUMULATE)}, "
                             f"not {accumulate!r}")
        self._acc_width = acc_width
        self._accumulate = accumulate
        sums = data.ArrayLayout(signed(acc_width), len(ACCUMULATE[accumulate]))
        super().__init__({
            "en": In(1), "last": In(1), "code": In(2),
            "p": In(signed(9)), "np": In(signed(9)), "q": In(signed(9)), "nq": In(signed(9)),
            "sums": Out(sums), "total": Out(sums),
        })

    @property
    def acc_width(self) -> int:
        return self._acc_width

    @property
    def accumulate(self) -> str:
        return self._accumulate

    def elaborate(self, platform):
        m = Module()
        w = self._acc_width
        terms = _terms(self._accumulate, self.code, self.p, self.np, self.q, self.nq)
        for i, t in enumerate(terms):
            m.d.comb += self.total[i].eq(self.sums[i] + t)
        acc = Signal(data.ArrayLayout(signed(w), len(terms)))
        m.d.comb += self.sums.eq(acc)
        with m.If(self.en):
            with m.If(self.last):
                m.d.sync += acc.eq(0)
            with m.Else():
                m.d.sync += acc.eq(self.total)
        return m


def _terms(accumulate, code, p, np_, q, nq):
    """The term a code selects from ``(p, -p, q, -q)``: four split parts or the two merged ones."""
    neg, odd = code[1], code[0]
    if accumulate == "split":
        tp = Mux(neg, np_, p)
        tq = Mux(neg, nq, q)
        return [Mux(odd, 0, tp), Mux(odd, 0, tq), Mux(odd, tp, 0), Mux(odd, tq, 0)]
    # code 0: (p, q); 1: (-q, p); 2: (-p, -q); 3: (q, -p)
    return [Mux(odd, Mux(neg, q, nq), Mux(neg, np_, p)), Mux(odd, Mux(neg, np_, p), Mux(neg, nq, q))]


class DotLane(wiring.Component):
    """One dot-product lane: its own activation ``(p, q)`` (``q`` already conjugated for W passes,
    zero for columns past K) and a 2-bit code give the lane's term, for the engine's adder tree.

    ``terms`` is combinational: split ``(a p, a q, b p, b q)`` or merged ``i**code * (p + i q)``.
    """

    def __init__(self, *, accumulate: str = "split"):
        if accumulate not in ACCUMULATE:
            raise ValueError(f"Accumulator style must be one of {', '.join(ACCUMULATE)}, "
                             f"not {accumulate!r}")
        self._accumulate = accumulate
        super().__init__({"code": In(2), "p": In(signed(9)), "q": In(signed(9)),
                          "terms": Out(data.ArrayLayout(signed(9), len(ACCUMULATE[accumulate])))})

    @property
    def accumulate(self) -> str:
        return self._accumulate

    def elaborate(self, platform):
        m = Module()
        np_, nq = Signal(signed(9)), Signal(signed(9))
        m.d.comb += [np_.eq(-self.p), nq.eq(-self.q)]
        for i, t in enumerate(_terms(self._accumulate, self.code, self.p, np_, self.q, nq)):
            m.d.comb += self.terms[i].eq(t)
        return m


class Engine(wiring.Component):
    """Runs one quantized layer: ``y = Σ_t U_t x + W_t conj(x)`` (Fairy2i) or ``Σ_t W_t conj(x)`` (Fairy±i).

    Parameters
    ----------
    lanes : int
        MAC lanes (rows computed in parallel), 1 to 4096.
    max_in, max_out : int
        Largest complex input length K and output row count accepted at run time.
    stages : int
        Residual stages T, 1 to 4.
    mode : {"fairy2i", "ifairy"}
        Matrices per stage: U then W, or W alone.
    accumulate : {"split", "merged"}
        Four integer sums per row (exact for any scales) or the two of a swap-mux complex accumulator.
    sharing : {"buffer", "stream"}
        Activation buffer of ``max_in`` entries loaded once per layer and broadcast, or no buffer: the
        host streams the activation beside every weight beat (output-stationary lanes only).
    lane_style : {"output", "dot"}
        Output-stationary lanes (one row each) or dot-product lanes (one column each, adder tree).

    Streams (valid/ready, ``amaranth.lib.stream``)
    ----------------------------------------------
    ``cmd`` (in): ``{k, rows}`` starts a layer (``1 <= k <= max_in``, ``1 <= rows <= max_out``), accepted
    when idle. ``act`` (in): then ``k`` beats of ``{p, q}`` (``sharing="stream"``: one act beat with
    every wgt beat instead, the vector resent for each pass; the two streams move together). ``wgt``
    (in): then the codes in the
    :mod:`fairyhw.model.pack` stream layout (``stream_words``; ``stream_words_dot`` for dot lanes), ``2*lanes``
    bits a beat. ``res`` (out): one beat per (row tile, stage, matrix, row) in that order (the row tile
    is ``row_tile`` rows: ``lanes``, or 1 for dot lanes), ``{sums, last}``, ``last`` on the layer's final
    beat.
    ``busy`` is high from the command to the last result.
    """

    def __init__(self, config: EngineConfig | None = None, **params):
        if config is None:
            config = EngineConfig(**params)
        elif params:
            raise TypeError("Engine takes an EngineConfig or keyword parameters, not both")
        elif not isinstance(config, EngineConfig):
            raise TypeError(f"Engine configuration must be an EngineConfig, not {config!r}")
        self._cfg = config
        super().__init__({
            "cmd": In(stream.Signature(cmd_layout(config))),
            "act": In(stream.Signature(act_layout(config))),
            "wgt": In(stream.Signature(wgt_shape(config))),
            "res": Out(stream.Signature(res_layout(config))),
            "busy": Out(1),
        })

    config = property(lambda self: self._cfg, doc="The :class:`EngineConfig`.")
    lanes = property(lambda self: self._cfg.lanes, doc="MAC lanes (complex MACs per cycle).")
    max_in = property(lambda self: self._cfg.max_in, doc="Largest input length K.")
    max_out = property(lambda self: self._cfg.max_out, doc="Largest output row count.")
    stages = property(lambda self: self._cfg.stages, doc="Residual stages T.")
    mode = property(lambda self: self._cfg.mode, doc="'fairy2i' or 'ifairy'.")
    accumulate = property(lambda self: self._cfg.accumulate, doc="'split' or 'merged'.")
    sharing = property(lambda self: self._cfg.sharing, doc="'buffer' or 'stream'.")
    lane_style = property(lambda self: self._cfg.lane_style, doc="'output', 'dot' or 'array'.")

    row_tile = property(lambda self: self._cfg.row_tile, doc=EngineConfig.row_tile.__doc__)
    matrices = property(lambda self: self._cfg.matrices, doc=EngineConfig.matrices.__doc__)
    parts = property(lambda self: self._cfg.parts, doc=EngineConfig.parts.__doc__)
    acc_width = property(lambda self: self._cfg.acc_width, doc=EngineConfig.acc_width.__doc__)

    cmd_layout = property(lambda self: cmd_layout(self._cfg), doc=cmd_layout.__doc__)
    sums_layout = property(lambda self: sums_layout(self._cfg), doc=sums_layout.__doc__)
    res_layout = property(lambda self: res_layout(self._cfg), doc=res_layout.__doc__)

    def result_count(self, rows: int) -> int:
        """Result beats of a layer with ``rows`` rows (see :func:`~fairyhw.hw.timing.result_beats`)."""
        return result_beats(self._cfg, rows)

    def latency(self, k: int, rows: int) -> int:
        """Cycles of one layer, command to last result, with no stalls (see
        :func:`fairyhw.hw.timing.latency`)."""
        return latency(self._cfg, k, rows)

    def _next_pass(self, m, last, final_pass, mat, stg, r_left, rows_done):
        """In the RUN state, on a pass's ``last`` weight word: the next matrix, else the next stage,
        else the next row tile; after the layer's final pass, DRAIN (shared by every lane style)."""
        with m.If(last):
            with m.If(mat == len(self.matrices) - 1):
                m.d.sync += mat.eq(0)
                with m.If(stg == self._cfg.stages - 1):
                    m.d.sync += [stg.eq(0), r_left.eq(r_left - rows_done)]
                with m.Else():
                    m.d.sync += stg.eq(stg + 1)
            with m.Else():
                m.d.sync += mat.eq(mat + 1)
            with m.If(final_pass):
                m.next = "DRAIN"

    def elaborate(self, platform):
        if self._cfg.lane_style == "dot":
            return self._elaborate_dot()
        if self._cfg.lane_style == "array":
            return self._elaborate_array()
        m = Module()
        n = self._cfg.lanes
        nmat = len(self.matrices)

        buffered = self._cfg.sharing == "buffer"
        if buffered:
            mem = m.submodules.act_mem = Memory(shape=ACT_LAYOUT, depth=self._cfg.max_in, init=[])
            wr = mem.write_port()
            rd = mem.read_port()
            act_data = rd.data
        else:
            act_data = Signal(ACT_LAYOUT)     # stage-1 register of the streamed activation

        kw = max(1, (self._cfg.max_in - 1).bit_length())
        j = Signal(range(self._cfg.max_in))
        k_last = Signal(kw)
        r_left = Signal(range(self._cfg.max_out + 1))
        mat = Signal(range(max(nmat, 2)))
        stg = Signal(range(max(self._cfg.stages, 2)))

        # pipeline stage 1: the accepted weight word meets the activation read from the buffer
        s1_valid = Signal()
        s1_codes = Signal(2 * n)
        s1_last = Signal()
        s1_conj = Signal()
        s1_final = Signal()
        s1_count = Signal(range(n + 1))

        # pipeline stage 2: the activation, conjugated and negated once for all lanes, in registers
        s2_valid = Signal()
        s2_codes = Signal(2 * n)
        s2_last = Signal()
        s2_final = Signal()
        s2_count = Signal(range(n + 1))
        xp, xnp, xq, xnq = (Signal(signed(9), name=nm) for nm in ("xp", "xnp", "xq", "xnq"))

        # shadow register draining on the result stream
        sums_layout = data.ArrayLayout(signed(self.acc_width), len(self.parts))
        shadow = [Signal(sums_layout, name=f"shadow{l}") for l in range(n)]
        sh_count = Signal(range(n + 1))
        sh_final = Signal()

        lanes = []
        for l in range(n):
            lane = Lane(acc_width=self.acc_width, accumulate=self._cfg.accumulate)
            m.submodules[f"lane{l}"] = lane
            lanes.append(lane)
            m.d.comb += [lane.en.eq(s2_valid), lane.last.eq(s2_last),
                         lane.code.eq(s2_codes[2 * l:2 * l + 2]),
                         lane.p.eq(xp), lane.np.eq(xnp), lane.q.eq(xq), lane.nq.eq(xnq)]

        col_last = j == k_last
        final_pass = (mat == nmat - 1) & (stg == self._cfg.stages - 1) & (r_left <= n)
        free_next = (sh_count == 0) | ((sh_count == 1) & self.res.ready)
        count = Mux(r_left >= n, n, r_left)
        conj = (mat == nmat - 1) if nmat == 2 else 1

        if buffered:
            m.d.comb += rd.addr.eq(j)
        m.d.sync += s1_valid.eq(0)
        qc = Mux(s1_conj, -act_data.q, act_data.q)
        m.d.sync += [s2_valid.eq(s1_valid), s2_codes.eq(s1_codes), s2_last.eq(s1_last),
                     s2_final.eq(s1_final), s2_count.eq(s1_count),
                     xp.eq(act_data.p), xnp.eq(-act_data.p), xq.eq(qc), xnq.eq(-qc)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [k_last.eq(self.cmd.payload.k - 1), r_left.eq(self.cmd.payload.rows),
                                 j.eq(0), mat.eq(0), stg.eq(0)]
                    m.next = "LOAD" if buffered else "RUN"
            if buffered:
                with m.State("LOAD"):
                    m.d.comb += [self.act.ready.eq(1), self.busy.eq(1), wr.addr.eq(j),
                                 wr.data.eq(self.act.payload), wr.en.eq(self.act.valid)]
                    with m.If(self.act.valid):
                        m.d.sync += j.eq(Mux(col_last, 0, j + 1))
                        with m.If(col_last):
                            m.next = "RUN"
            with m.State("RUN"):
                ready = ~col_last | (free_next & ~(s1_valid & s1_last) & ~(s2_valid & s2_last))
                m.d.comb += self.busy.eq(1)
                if buffered:
                    m.d.comb += self.wgt.ready.eq(ready)
                    take = self.wgt.valid & ready
                else:   # weight and activation beats move together
                    m.d.comb += [self.wgt.ready.eq(ready & self.act.valid),
                                 self.act.ready.eq(ready & self.wgt.valid)]
                    take = self.wgt.valid & self.act.valid & ready
                    with m.If(take):
                        m.d.sync += act_data.eq(self.act.payload)
                with m.If(take):
                    m.d.sync += [s1_valid.eq(1), s1_codes.eq(self.wgt.payload), s1_last.eq(col_last),
                                 s1_conj.eq(conj), s1_count.eq(count),
                                 s1_final.eq(final_pass & col_last),
                                 j.eq(Mux(col_last, 0, j + 1))]
                    self._next_pass(m, col_last, final_pass, mat, stg, r_left, count)
            with m.State("DRAIN"):
                m.d.comb += self.busy.eq(1)
                with m.If(~s1_valid & ~s2_valid & (sh_count == 0)):
                    m.next = "IDLE"

        m.d.comb += [self.res.valid.eq(sh_count != 0), self.res.payload.sums.eq(shadow[0]),
                     self.res.payload.last.eq(sh_final & (sh_count == 1))]
        with m.If(s2_valid & s2_last):
            m.d.sync += [sh_count.eq(s2_count), sh_final.eq(s2_final)]
            m.d.sync += [shadow[l].eq(lanes[l].total) for l in range(n)]
        with m.Elif(self.res.valid & self.res.ready):
            m.d.sync += sh_count.eq(sh_count - 1)
            m.d.sync += [shadow[l].eq(shadow[l + 1]) for l in range(n - 1)]
        return m

    def _elaborate_dot(self):
        m = Module()
        n = self._cfg.lanes
        nmat = len(self.matrices)
        nparts = len(self.parts)
        depth = -(-self._cfg.max_in // n)
        # the activation buffer: n banks side by side, element j in bank j % n at address j // n
        mem = m.submodules.act_mem = Memory(shape=unsigned(16 * n), depth=depth, init=[])
        wr = mem.write_port(granularity=16)
        rd = mem.read_port()

        j = Signal(range(self._cfg.max_in))                  # element counter while loading
        bank = Signal(range(max(n, 2)))
        addr = Signal(range(max(depth, 2)))
        last_bank = Signal(range(max(n, 2)))             # bank of element K-1
        c_last = Signal(range(max(depth, 2)))            # address of element K-1 = chunks - 1
        k_last = Signal(max(1, (self._cfg.max_in - 1).bit_length()))
        chunk = Signal(range(max(depth, 2)))
        r_left = Signal(range(self._cfg.max_out + 1))
        mat = Signal(range(max(nmat, 2)))
        stg = Signal(range(max(self._cfg.stages, 2)))

        s1_valid, s1_last, s1_conj, s1_final = Signal(), Signal(), Signal(), Signal()
        s1_codes = Signal(2 * n)
        s2_valid, s2_last, s2_final = Signal(), Signal(), Signal()
        s2_codes = Signal(2 * n)
        s2_p = [Signal(signed(9), name=f"s2_p{l}") for l in range(n)]
        s2_q = [Signal(signed(9), name=f"s2_q{l}") for l in range(n)]
        sums_layout = data.ArrayLayout(signed(self.acc_width), nparts)
        s3_valid, s3_last, s3_final = Signal(), Signal(), Signal()
        s3_tree = Signal(sums_layout)
        acc = Signal(sums_layout)
        out = Signal(sums_layout)
        out_valid, out_final = Signal(), Signal()

        # lanes and the adder tree
        lanes = []
        for l in range(n):
            lane = m.submodules[f"lane{l}"] = DotLane(accumulate=self._cfg.accumulate)
            m.d.comb += [lane.code.eq(s2_codes[2 * l:2 * l + 2]), lane.p.eq(s2_p[l]), lane.q.eq(s2_q[l])]
            lanes.append(lane)
        for part in range(nparts):
            level = [lane.terms[part] for lane in lanes]
            while len(level) > 1:
                level = [level[i] + level[i + 1] if i + 1 < len(level) else level[i]
                         for i in range(0, len(level), 2)]
            m.d.sync += s3_tree[part].eq(level[0])

        # stage 1 -> 2: the buffered activations, conjugated, zero past K in the row's last chunk
        m.d.sync += [s2_valid.eq(s1_valid), s2_last.eq(s1_last), s2_final.eq(s1_final),
                     s2_codes.eq(s1_codes)]
        for l in range(n):
            x = rd.data[16 * l:16 * l + 16]
            p, q = x[0:8].as_signed(), x[8:16].as_signed()
            off = s1_last & (l > last_bank) if l else 0     # the row's last chunk
            m.d.sync += [s2_p[l].eq(Mux(off, 0, p)), s2_q[l].eq(Mux(off, 0, Mux(s1_conj, -q, q)))]
        # stage 2 -> 3 is the tree register; stage 3: accumulate, and hand a finished row to the output
        m.d.sync += [s3_valid.eq(s2_valid), s3_last.eq(s2_last), s3_final.eq(s2_final)]
        total = [acc[i] + s3_tree[i] for i in range(nparts)]
        with m.If(self.res.valid & self.res.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(s3_valid):
            with m.If(s3_last):
                m.d.sync += [acc.eq(0), out_valid.eq(1), out_final.eq(s3_final)]
                m.d.sync += [out[i].eq(total[i]) for i in range(nparts)]
            with m.Else():
                m.d.sync += [acc[i].eq(total[i]) for i in range(nparts)]
        m.d.comb += [self.res.valid.eq(out_valid), self.res.payload.sums.eq(out),
                     self.res.payload.last.eq(out_final)]

        chunk_last = chunk == c_last
        final_pass = (mat == nmat - 1) & (stg == self._cfg.stages - 1) & (r_left == 1)
        conj = (mat == nmat - 1) if nmat == 2 else 1
        m.d.comb += rd.addr.eq(chunk)
        m.d.sync += s1_valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [k_last.eq(self.cmd.payload.k - 1), r_left.eq(self.cmd.payload.rows),
                                 j.eq(0), bank.eq(0), addr.eq(0), chunk.eq(0), mat.eq(0), stg.eq(0)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += [self.act.ready.eq(1), self.busy.eq(1), wr.addr.eq(addr)]
                m.d.comb += [wr.data[16 * l:16 * l + 16].eq(self.act.payload) for l in range(n)]
                m.d.comb += [wr.en[l].eq(self.act.valid & (bank == l)) for l in range(n)]
                with m.If(self.act.valid):
                    m.d.sync += j.eq(j + 1)
                    with m.If(bank == n - 1):
                        m.d.sync += [bank.eq(0), addr.eq(addr + 1)]
                    with m.Else():
                        m.d.sync += bank.eq(bank + 1)
                    with m.If(j == k_last):
                        m.d.sync += [last_bank.eq(bank), c_last.eq(addr)]
                        m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.busy.eq(1)
                out_free = ~out_valid | self.res.ready
                ready = ~chunk_last | (out_free & ~(s1_valid & s1_last) & ~(s2_valid & s2_last) &
                                       ~(s3_valid & s3_last))
                m.d.comb += self.wgt.ready.eq(ready)
                with m.If(self.wgt.valid & ready):
                    m.d.sync += [s1_valid.eq(1), s1_codes.eq(self.wgt.payload), s1_last.eq(chunk_last),
                                 s1_conj.eq(conj), s1_final.eq(final_pass & chunk_last),
                                 chunk.eq(Mux(chunk_last, 0, chunk + 1))]
                    self._next_pass(m, chunk_last, final_pass, mat, stg, r_left, 1)
            with m.State("DRAIN"):
                m.d.comb += self.busy.eq(1)
                with m.If(~s1_valid & ~s2_valid & ~s3_valid & ~out_valid):
                    m.next = "IDLE"
        return m

    def _elaborate_array(self):
        """The array style (see :mod:`fairyhw.hw.array`): a datapath with no enable, credits at the door."""
        from .array import PairPrep, ResultBuffer, RowTrees
        cfg = self._cfg
        m = Module()
        R, C = cfg.rows, cfg.cols
        nmat = len(self.matrices)
        depth = -(-cfg.max_in // C)
        # the buffer: banks of BANK_COLS columns, each with its own write and read control registers,
        # copied from the sequencer's a cycle later (and kept apart: see KEEP) (at 4 x 128 the buffer's 57 block RAMs span the
        # ECP5 chip, and any register driving logic beside all of them paid a 5-7 ns route: the
        # critical path at 99.8 MHz was the element count -> the zeroing mask by the RAMs). A bank is
        # written only while loading and read only while running, so a read never meets a write to
        # its address: `no_rw_check` tells synthesis not to emulate read-before-write (on ECP5 that
        # emulation cost a flip-flop and a LUT a data bit, and a LUT between the block RAM and its
        # read-data register)
        banks = []
        mids = {}

        def copy(b, src, what):
            """The copy of sequencer register ``src`` that bank ``b`` registers: a middle copy shared by
            COPY_FANOUT banks (a register a cycle after ``src``), so that no sequencer register drives
            more than a few far loads (at 4 x 128 the sequencer spread out toward the 64 banks, and
            its own decisions paid two 3.4 ns routes: 117.7 MHz)."""
            key = (what, b // COPY_FANOUT)
            if key not in mids:
                mid = Signal.like(src, name=f"{what}_mid{b // COPY_FANOUT}", reset_less=True, attrs=KEEP)
                m.d.sync += mid.eq(src)
                mids[key] = mid
            return mids[key]

        for b, cb in enumerate(cfg.banks):
            mem = m.submodules[f"act_mem{b}"] = Memory(shape=unsigned(16 * cb), depth=depth, init=[],
                                                      attrs={"no_rw_check": 1})
            banks.append((b * BANK_COLS, cb, mem.write_port(), mem.read_port()))

        left = Signal(range(cfg.max_in + 1))              # elements still to load
        ld_addr = Signal(range(max(depth, 2)))
        c_last = Signal(range(max(depth, 2)))             # the last chunk's address
        chunk = Signal(range(max(depth, 2)))
        r_left = Signal(range(cfg.max_out + 1))
        mat = Signal(range(max(nmat, 2)))
        stg = Signal(range(max(cfg.stages, 2)))
        credits = Signal(range(3), init=2)                # free tile slots of the result buffer

        # a slot's control: valid, the first and last chunk of its pass, and the pass's facts
        ctl = data.StructLayout({"valid": 1, "first": 1, "last": 1, "conj": 1, "final": 1,
                                 "count": range(R + 1)})

        def stage(src, name):
            """The control one pipeline register later."""
            dst = Signal(ctl, name=name)
            m.d.sync += dst.eq(src)
            return dst

        # stage 1: the accepted word (captured every cycle; `valid` says whether it was taken), and the
        # chunk counter copied to each bank's read address register
        s1 = Signal(ctl)
        s1_codes = Signal(2 * R * C, reset_less=True)
        m.d.sync += s1_codes.eq(self.wgt.payload)
        for b, (c0, cb, wr, rd) in enumerate(banks):
            raddr = Signal.like(chunk, name=f"raddr{b}", reset_less=True, attrs=KEEP)
            m.d.sync += raddr.eq(copy(b, chunk, "chunk"))
            m.d.comb += rd.addr.eq(raddr)
        # stages 1b, 1a: the chunk reaches the banks' read addresses through the two levels of copies,
        # and the banks read it
        s1b = stage(s1, "s1b")
        s1a = stage(s1b, "s1a")
        s1b_codes = Signal(2 * R * C, reset_less=True)
        s1a_codes = Signal(2 * R * C, reset_less=True)
        m.d.sync += [s1b_codes.eq(s1_codes), s1a_codes.eq(s1b_codes)]
        # stage 1r: the buffer's read data registered (a block RAM's clock-to-out plus its routing was
        # the critical path without it: 89.9 MHz on ECP5), and the word with it
        rdq = Signal(16 * C, reset_less=True)
        s1r_codes = Signal(2 * R * C, reset_less=True)
        m.d.sync += [rdq.eq(Cat(*(rd.data for _, _, _, rd in banks))), s1r_codes.eq(s1a_codes)]
        s1r = stage(s1a, "s1r")
        # stage 2: shared pair values and the plane bits, registered
        prep = m.submodules.prep = PairPrep(cols=C)
        for c in range(C):
            x = rdq[16 * c:16 * c + 16]
            m.d.comb += [prep.p[c].eq(x[0:8].as_signed()), prep.q[c].eq(x[8:16].as_signed())]
        pp = Signal.like(prep.pp, reset_less=True)
        qq = Signal.like(prep.qq, reset_less=True)
        h = [Signal(C, name=f"h{r}", reset_less=True) for r in range(R)]
        xb = [Signal(C, name=f"x{r}", reset_less=True) for r in range(R)]
        m.d.sync += [pp.eq(prep.pp), qq.eq(prep.qq)]
        for r in range(R):
            for c in range(C):
                # the word carries (h, x) per weight (the host's Gray code of the code)
                xp_, hp_ = s1r_codes[2 * (r * C + c)], s1r_codes[2 * (r * C + c) + 1]
                m.d.sync += [h[r][c].eq(hp_), xb[r][c].eq(xp_)]
        s2 = stage(s1r, "s2")

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
        tail = s2
        pipe = [s1, s1b, s1a, s1r, s2]
        for i in range(trees[0].depth):
            tail = stage(tail, f"st{i}")
            pipe.append(tail)

        # the root: each row accumulates its four gated sums over the chunks (the first chunk of a pass
        # starts from zero, so no reset is needed), the shared S_p, S_q once; a pass's last chunk hands
        # the totals to the result buffer
        acc_l = data.ArrayLayout(signed(self.acc_width), 4)
        buf = m.submodules.results = ResultBuffer(rows=R, group=cfg.group, acc_width=self.acc_width,
                                                  accumulate=cfg.accumulate)
        for r in range(R + 1):
            acc = Signal(acc_l, name=f"acc{r}", reset_less=True)
            tot = Signal(acc_l, name=f"total{r}")
            m.d.comb += [tot[i].eq(Mux(tail.first, 0, acc[i]) + trees[r].sums[i]) for i in range(4)]
            with m.If(tail.valid):
                m.d.sync += acc.eq(tot)
            m.d.comb += (buf.tile[r] if r < R else buf.shared).eq(tot)
        m.d.comb += [buf.cap.eq(tail.last), buf.count.eq(tail.count), buf.final.eq(tail.final),
                     buf.conj.eq(tail.conj)]
        wiring.connect(m, wiring.flipped(self.res), buf.res)

        # the sequencer, its state one-hot and every decision a register or one LUT of registers (the
        # decoded FSM state and the comparisons of its counters fanned out to the load and pass logic:
        # the ECP5 critical path at 106.7 MHz). A pass's last word takes a credit (a tile slot), which
        # comes back when the tile's last result beat leaves the buffer.
        idle, loading, running, draining = Signal(init=1), Signal(), Signal(), Signal()
        last_beat = Signal()                              # the act beat now offered is the layer's last
        chunk_last = Signal()                             # == (chunk == c_last)
        c_last_m1 = Signal.like(c_last)
        r_gt = Signal()                                   # == (r_left > R): not the last row tile
        last_mat = (mat == nmat - 1) if nmat > 1 else 1
        last_stg = (stg == cfg.stages - 1) if cfg.stages > 1 else 1
        final_pass = last_mat & last_stg & ~r_gt
        count = Mux(r_gt, R, r_left)
        conj = (mat == nmat - 1) if nmat == 2 else 1
        in_flight = Cat(*(st.valid for st in pipe)).any()
        pass_end = Signal()                               # a pass's last word was taken last cycle
        ready = running & (~chunk_last | ((credits != 0) & ~pass_end))
        take_cmd = self.cmd.valid & idle
        take_act = self.act.valid & loading
        take = self.wgt.valid & ready
        m.d.comb += [self.cmd.ready.eq(idle), self.act.ready.eq(loading), self.wgt.ready.eq(ready),
                     self.busy.eq(~idle)]
        m.d.sync += [s1.valid.eq(take), s1.last.eq(take & chunk_last), s1.first.eq(chunk == 0),
                     s1.conj.eq(conj), s1.final.eq(final_pass), s1.count.eq(count)]
        m.d.sync += credits.eq(credits - (take & chunk_last) + buf.freed)

        # the command: its payload is captured every idle cycle and the counters start from those
        # registers a cycle after the handshake, which itself reaches three registers (its fan-out to
        # the ~50 registers a command loaded was the ECP5 critical path: 127.6 MHz at 1 x 128, 102.4
        # at 4 x 128). chunk, mat and stg are zero between layers (each layer ends on its last pass).
        k_r = Signal.like(self.cmd.payload.k, reset_less=True)
        rows_r = Signal.like(self.cmd.payload.rows, reset_less=True)
        cmd_go = Signal()
        with m.If(idle):
            m.d.sync += [k_r.eq(self.cmd.payload.k), rows_r.eq(self.cmd.payload.rows)]
        m.d.sync += cmd_go.eq(take_cmd)
        with m.If(take_cmd):
            m.d.sync += idle.eq(0)
        with m.If(cmd_go):
            m.d.sync += [loading.eq(1), left.eq(k_r), last_beat.eq(k_r <= C), ld_addr.eq(0)]

        # LOAD: the act beats fill the buffer, chunk by chunk. A beat is registered when taken, with the
        # sequencer's `a_valid` and the beat's facts (last beat, the element count's low bits); each
        # bank copies those registers (through a middle copy) and its slice of the beat beside it, and
        # writes them three cycles after the beat was taken, at its own address counter. The write never hangs on the handshake (whose fan-out to
        # the block RAMs' write enables and the zeroing logic was the ECP5 critical path at 125.4 MHz).
        # Elements past K in the last beat are written as zeros (the shared sums S_p, S_q see every
        # column; measured cheaper than masking the shared tree: 4,541 against 5,949 shared Xilinx LUTs
        # at 128 columns); a bank compares only the count's low bits, on the last beat (the whole
        # count's comparison was the Xilinx netlist's longest path: 17 CARRY4s), into a register of
        # zero flags that gate the write data (the comparison feeding the data registers' resets
        # directly was the ECP5 critical path at 106.3 MHz). RUN starts in the cycle of the last
        # beat's write, and the banks read two cycles after that.
        a_valid, a_last = Signal(), Signal(reset_less=True)
        a_data, a_data2 = Signal(16 * C, reset_less=True), Signal(16 * C, reset_less=True)
        m.d.sync += [a_valid.eq(take_act), a_last.eq(last_beat), a_data.eq(self.act.payload),
                     a_data2.eq(a_data)]
        low = left[:C.bit_length()]
        for b, (c0, cb, wr, rd) in enumerate(banks):
            b_last = Signal(name=f"zlast{b}", reset_less=True, attrs=KEEP)
            b_low = Signal.like(low, name=f"zlow{b}", reset_less=True, attrs=KEEP)
            b_clear = Signal(name=f"wclear{b}", reset_less=True, attrs=KEEP)
            b_en = Signal(name=f"wen{b}", reset_less=True, attrs=KEEP)
            b_addr = Signal.like(ld_addr, name=f"waddr{b}", reset_less=True, attrs=KEEP)
            b_data = Signal(16 * cb, name=f"wdata{b}", reset_less=True)
            b_zero = Signal(cb, name=f"wzero{b}", reset_less=True)
            m.d.sync += [b_last.eq(copy(b, last_beat, "last")), b_low.eq(copy(b, low, "low")),
                         b_clear.eq(copy(b, cmd_go, "clear")), b_en.eq(copy(b, a_valid, "wen")),
                         b_data.eq(a_data2[16 * c0:16 * (c0 + cb)])]
            for j in range(cb):
                c = c0 + j
                m.d.sync += b_zero[j].eq(b_last & (b_low <= c) if c else 0)
                v = b_data[16 * j:16 * j + 16]
                m.d.comb += wr.data[16 * j:16 * j + 16].eq(Mux(b_zero[j], 0, v))
            m.d.sync += b_addr.eq(Mux(b_clear, 0, b_addr + b_en))
            m.d.comb += [wr.addr.eq(b_addr), wr.en.eq(b_en)]
        with m.If(take_act):
            m.d.sync += [left.eq(left - C), last_beat.eq(left <= 2 * C)]
            with m.If(last_beat):
                m.d.sync += loading.eq(0)
        with m.If(a_valid):
            m.d.sync += ld_addr.eq(ld_addr + 1)
        # the sequencer learns that the buffer is full from its own register, a cycle before the banks'
        # last write, which the first word's read follows by two cycles (the load stage's registers sit
        # by the block RAMs they drive; read directly, they put two chip-wide routes on the ECP5
        # critical path: 73.8 MHz at 4 x 128)
        load_done = Signal()
        m.d.sync += load_done.eq(a_valid & a_last)
        with m.If(load_done):
            m.d.sync += [running.eq(1), c_last.eq(ld_addr - 1), c_last_m1.eq(ld_addr - 2),
                         chunk_last.eq(ld_addr == 1), r_left.eq(rows_r), r_gt.eq(rows_r > R)]

        # RUN: a weight word a cycle. A pass's last word sets `pass_end`, and the cycle after, the
        # next matrix, else the next stage, else the next row tile is counted from that register (the
        # handshake's fan-out to these counters was the ECP5 critical path at 122.5 MHz); a last word
        # waits that cycle (only a one-word pass can meet it). After the final pass, DRAIN until the
        # pipeline and the buffer are empty.
        with m.If(take):
            m.d.sync += [chunk.eq(Mux(chunk_last, 0, chunk + 1)),
                         chunk_last.eq(Mux(chunk_last, c_last == 0, chunk == c_last_m1))]
            with m.If(chunk_last & final_pass):
                m.d.sync += [running.eq(0), draining.eq(1)]
        m.d.sync += pass_end.eq(take & chunk_last)
        with m.If(pass_end):
            with m.If(last_mat):
                m.d.sync += mat.eq(0)
                with m.If(last_stg):
                    m.d.sync += [stg.eq(0), r_left.eq(r_left - R), r_gt.eq(r_left > 2 * R)]
                with m.Else():
                    m.d.sync += stg.eq(stg + 1)
            with m.Else():
                m.d.sync += mat.eq(mat + 1)
        # `empty` a register (the pipeline's valids and the buffer's state gathered into the state
        # registers were the ECP5 critical path at 130.8 MHz): the engine idles a cycle later
        empty = Signal()
        m.d.sync += empty.eq(~in_flight & buf.idle & ~take)
        with m.If(draining & empty):
            m.d.sync += [draining.eq(0), idle.eq(1)]
        return m
