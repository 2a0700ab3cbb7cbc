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

Integer contract (``docs/design.md``, :mod:`fairyhw.golden`)
    Split accumulators give, per row and pass, ``(Σap, Σaq, Σbp, Σbq)`` exactly as
    :func:`fairyhw.golden.integer_sums`; merged ones give :func:`fairyhw.golden.merge_sums` of them.
    For the W matrix (and every Fairy±i pass) the engine computes on ``conj(x)``. Scales are applied on
    the host (:func:`fairyhw.hw.driver.rescale_results`).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import ACCUMULATE, EngineConfig, check_int
from .timing import latency, result_beats

__all__ = ["ACT_LAYOUT", "Lane", "DotLane", "Engine"]

#: One complex int8 activation: ``x = sr*p + i*si*q``.
ACT_LAYOUT = data.StructLayout({"p": signed(8), "q": signed(8)})

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
    :mod:`fairyhw.pack` stream layout (``stream_words``; ``stream_words_dot`` for dot lanes), ``2*lanes``
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
        act = data.ArrayLayout(ACT_LAYOUT, config.cols) if config.lane_style == "array" else ACT_LAYOUT
        super().__init__({
            "cmd": In(stream.Signature(self.cmd_layout)),
            "act": In(stream.Signature(act)),
            "wgt": In(stream.Signature(unsigned(2 * config.lanes))),
            "res": Out(stream.Signature(self.res_layout)),
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

    @property
    def cmd_layout(self) -> data.StructLayout:
        return data.StructLayout({"k": unsigned(self._cfg.max_in.bit_length()),
                                  "rows": unsigned(self._cfg.max_out.bit_length())})

    @property
    def sums_layout(self) -> data.ArrayLayout:
        """One row's sums: ``parts`` signed ``acc_width``-bit values."""
        return data.ArrayLayout(signed(self.acc_width), len(self.parts))

    @property
    def res_layout(self) -> data.StructLayout:
        """A result beat: one row's sums (``group`` rows for the array style), then ``last``."""
        if self._cfg.lane_style == "array":
            return data.StructLayout({"sums": data.ArrayLayout(self.sums_layout, self._cfg.group),
                                      "last": 1})
        return data.StructLayout({"sums": self.sums_layout, "last": 1})

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
        """The array style (see :mod:`fairyhw.hw.array`): pipelined, every stage advancing on ``adv``."""
        from .array import PairPrep, RowTrees
        cfg = self._cfg
        m = Module()
        R, C, G = cfg.rows, cfg.cols, cfg.group
        nmat = len(self.matrices)
        depth = -(-self._cfg.max_in // C)
        mem = m.submodules.act_mem = Memory(shape=unsigned(16 * C), depth=depth, init=[])
        wr = mem.write_port()
        rd = mem.read_port()

        left = Signal(range(self._cfg.max_in + 1))            # elements still to load
        ld_addr = Signal(range(max(depth, 2)))
        c_last = Signal(range(max(depth, 2)))             # the last chunk's address
        chunk = Signal(range(max(depth, 2)))
        r_left = Signal(range(self._cfg.max_out + 1))
        mat = Signal(range(max(nmat, 2)))
        stg = Signal(range(max(self._cfg.stages, 2)))
        adv = Signal()

        ctl = data.StructLayout({"valid": 1, "last": 1, "conj": 1, "final": 1,
                                 "count": range(R + 1)})

        def stage(src, name):
            """The control bundle one pipeline register later."""
            dst = Signal(ctl, name=name)
            with m.If(adv):
                m.d.sync += dst.eq(src)
            return dst

        # stage 1: the accepted word; the buffer read of its chunk arrives with it
        s1 = Signal(ctl)
        s1_codes = Signal(2 * R * C)
        m.d.comb += [rd.addr.eq(chunk), rd.en.eq(adv)]
        # stage 1r: the buffer's read data registered (a block RAM's clock-to-out plus its routing was
        # the critical path without it: 89.9 MHz on ECP5), and the word with it
        rdq = Signal(16 * C)
        s1r_codes = Signal(2 * R * C)
        with m.If(adv):
            m.d.sync += [rdq.eq(rd.data), s1r_codes.eq(s1_codes)]
        s1r = stage(s1, "s1r")
        # stage 2: shared pair values and the plane bits, registered
        prep = m.submodules.prep = PairPrep(cols=C)
        for c in range(C):
            x = rdq[16 * c:16 * c + 16]
            m.d.comb += [prep.p[c].eq(x[0:8].as_signed()), prep.q[c].eq(x[8:16].as_signed())]
        pp = Signal.like(prep.pp)
        qq = Signal.like(prep.qq)
        h = [Signal(C, name=f"h{r}") for r in range(R)]
        xb = [Signal(C, name=f"x{r}") for r in range(R)]
        with m.If(adv):
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
            m.d.comb += [t.en.eq(adv), t.pp.eq(pp), t.qq.eq(qq)]
            if r < R:
                m.d.comb += [t.h.eq(h[r]), t.x.eq(xb[r])]
            else:
                m.d.comb += [t.h.eq((1 << C) - 1), t.x.eq(0)]
            trees.append(t)
        tail = s2
        pipe = [s1, s1r, s2]
        for i in range(trees[0].depth):
            tail = stage(tail, f"st{i}")
            pipe.append(tail)

        # the root: each row accumulates its four gated sums over the chunks, the shared S_p, S_q once
        acc_l = data.ArrayLayout(signed(self.acc_width), 4)
        acc = [Signal(acc_l, name=f"acc{r}") for r in range(R + 1)]
        total = []
        for r in range(R + 1):
            tot = Signal(acc_l, name=f"total{r}")
            m.d.comb += [tot[i].eq(acc[r][i] + trees[r].sums[i]) for i in range(4)]
            with m.If(adv & tail.valid):
                with m.If(tail.last):
                    m.d.sync += acc[r].eq(0)
                with m.Else():
                    m.d.sync += acc[r].eq(tot)
            total.append(tot)
        rb = tail

        # the result register: a row tile's sums, captured at once (enable only, no shift) and read out
        # `group` rows a beat through a mux; the parts are formed on the way out
        # (Σap = S_p - H_p - X_p, Σbp = X_p - H_p, the same for q, negated for conj(x))
        nbeats = -(-R // G)
        shadow = [Signal(acc_l, name=f"shadow{r}") for r in range(nbeats * G)]
        groups = Array(Signal(data.ArrayLayout(acc_l, G), name=f"group{b}") for b in range(nbeats))
        for b in range(nbeats):
            m.d.comb += [groups[b][g].eq(shadow[b * G + g]) for g in range(G)]
        shared = Signal(acc_l)
        sh_left = Signal(range(nbeats * G + 1))
        sh_beat = Signal(range(max(nbeats, 2)))
        sh_final = Signal()
        sh_conj = Signal()
        # the pipeline holds while a tile's final sums wait for the result register to empty; `adv` is a
        # function of registers only (not of res.ready: that path, through the advance enable's fan-out,
        # limited a 1 x 128 array to 87.7 MHz on ECP5), so a tile is captured the cycle after the
        # previous one's last beat at the earliest
        m.d.comb += adv.eq(~(rb.valid & rb.last) | (sh_left == 0))
        m.d.comb += [self.res.valid.eq(sh_left != 0), self.res.payload.last.eq(sh_final & (sh_left <= G))]
        s_p, s_q = shared[0], shared[2]
        front = groups[sh_beat]
        for g in range(G):
            hp, xp, hq, xq = (front[g][i] for i in range(4))
            a_p, b_p = s_p - hp - xp, xp - hp
            a_q = Mux(sh_conj, hq + xq - s_q, s_q - hq - xq)
            b_q = Mux(sh_conj, hq - xq, xq - hq)
            out = self.res.payload.sums[g]
            if self._cfg.accumulate == "split":
                m.d.comb += [out[0].eq(a_p), out[1].eq(a_q), out[2].eq(b_p), out[3].eq(b_q)]
            else:
                m.d.comb += [out[0].eq(a_p - b_q), out[1].eq(a_q + b_p)]
        with m.If(rb.valid & rb.last & adv):
            m.d.sync += [sh_left.eq(rb.count), sh_beat.eq(0), sh_final.eq(rb.final),
                         sh_conj.eq(rb.conj), shared.eq(total[R])]
            m.d.sync += [shadow[r].eq(total[r]) for r in range(R)]
        with m.Elif(self.res.valid & self.res.ready):
            m.d.sync += [sh_left.eq(Mux(sh_left <= G, 0, sh_left - G)), sh_beat.eq(sh_beat + 1)]

        # the sequencer
        chunk_last = chunk == c_last
        final_pass = (mat == nmat - 1) & (stg == self._cfg.stages - 1) & (r_left <= R)
        count = Mux(r_left >= R, R, r_left)
        conj = (mat == nmat - 1) if nmat == 2 else 1
        in_flight = Cat(*(st.valid for st in pipe)).any()
        with m.If(adv):
            m.d.sync += s1.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [left.eq(self.cmd.payload.k), r_left.eq(self.cmd.payload.rows),
                                 ld_addr.eq(0), chunk.eq(0), mat.eq(0), stg.eq(0)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += [self.act.ready.eq(1), self.busy.eq(1), wr.addr.eq(ld_addr),
                             wr.en.eq(self.act.valid)]
                # elements past K in the last beat are written as zeros: the shared sums S_p, S_q see
                # every column (measured cheaper than masking the shared tree: 4,541 against 5,949
                # shared Xilinx LUTs at 128 columns)
                for c in range(C):
                    keep = (left > c) if c else 1
                    m.d.comb += wr.data[16 * c:16 * c + 16].eq(Mux(keep, self.act.payload[c].as_value(), 0))
                with m.If(self.act.valid):
                    m.d.sync += [left.eq(left - C), ld_addr.eq(ld_addr + 1)]
                    with m.If(left <= C):
                        m.d.sync += c_last.eq(ld_addr)
                        m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [self.busy.eq(1), self.wgt.ready.eq(adv)]
                with m.If(self.wgt.valid & adv):
                    m.d.sync += [s1.valid.eq(1), s1.last.eq(chunk_last), s1.conj.eq(conj),
                                 s1.final.eq(final_pass & chunk_last), s1.count.eq(count),
                                 s1_codes.eq(self.wgt.payload), chunk.eq(Mux(chunk_last, 0, chunk + 1))]
                    self._next_pass(m, chunk_last, final_pass, mat, stg, r_left, count)
            with m.State("DRAIN"):
                m.d.comb += self.busy.eq(1)
                with m.If(~in_flight & (sh_left == 0)):
                    m.next = "IDLE"
        return m
