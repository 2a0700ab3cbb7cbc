"""The output-stationary and dot-product lane styles: the lanes and the two engines built of them.

Output-stationary lanes (``lane_style="output"``, broadcast activation)
    The engine buffers the layer's input vector (complex int8, ``K`` elements) in an on-chip memory,
    then streams the weight codes: one word of ``LANES`` codes per cycle, lane ``l`` owning output row
    ``r0 + l`` of the current row tile. Each cycle one buffered activation is broadcast to every lane and
    each lane adds ±p, ±q (or a swapped pair, for merged accumulators) into its accumulators: adders,
    negations and multiplexers only. A *pass* is one (row tile, stage, matrix) triple of ``K`` cycles;
    at its end the lanes' sums move to a shadow register that drains on the result stream, one row per
    beat, while the next pass accumulates.

Dot-product lanes (``lane_style="dot"``, an adder tree)
    The ``LANES`` lanes split one row's input instead: the activation buffer is ``LANES`` banks wide, a
    weight word holds ``LANES`` codes of *one* row (columns ``c*LANES .. c*LANES+LANES-1``), every lane
    selects its term from its own activation, an adder tree sums the terms, and one accumulator per sum
    part adds the tree's output over the row's ``ceil(K/LANES)`` chunks. No per-lane accumulators and no
    shadow register; one result per (row, stage, matrix) pass.

Both run the same IDLE / LOAD / RUN / DRAIN state machine (:func:`layer_fsm`) and step passes with
:func:`next_pass`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import ACCUMULATE, check_int, validating
from .streams import ACT_LAYOUT

__all__ = ["Lane", "DotLane", "layer_fsm", "next_pass", "assemble_output", "assemble_dot"]


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
        with validating(self):
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
        with validating(self):
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


def next_pass(m, cfg, last, final_pass, mat, stg, r_left, rows_done):
    """In the RUN state, on a pass's ``last`` weight word: the next matrix, else the next stage,
    else the next row tile (``rows_done`` rows fewer left); after the layer's final pass, DRAIN."""
    with m.If(last):
        with m.If(mat == len(cfg.matrices) - 1):
            m.d.sync += mat.eq(0)
            with m.If(stg == cfg.stages - 1):
                m.d.sync += [stg.eq(0), r_left.eq(r_left - rows_done)]
            with m.Else():
                m.d.sync += stg.eq(stg + 1)
        with m.Else():
            m.d.sync += mat.eq(mat + 1)
        with m.If(final_pass):
            m.next = "DRAIN"


def layer_fsm(m, e, *, start, load, accept, drained) -> None:
    """The IDLE / LOAD / RUN / DRAIN state machine of both lane styles. IDLE takes a command and
    applies ``start`` (the counters' first values); LOAD (when ``load`` is given: ``load()`` writes
    the offered act beat and goes to RUN after the last) takes act beats; RUN takes weight words
    (``accept()`` drives the handshake, registers the word and steps the passes with
    :func:`next_pass`, which goes to DRAIN after the final pass); DRAIN waits for ``drained``.
    ``busy`` is high outside IDLE."""
    with m.FSM():
        with m.State("IDLE"):
            m.d.comb += e.cmd.ready.eq(1)
            with m.If(e.cmd.valid):
                m.d.sync += start
                m.next = "RUN" if load is None else "LOAD"
        if load is not None:
            with m.State("LOAD"):
                m.d.comb += [e.act.ready.eq(1), e.busy.eq(1)]
                load()
        with m.State("RUN"):
            m.d.comb += e.busy.eq(1)
            accept()
        with m.State("DRAIN"):
            m.d.comb += e.busy.eq(1)
            with m.If(drained):
                m.next = "IDLE"


def assemble_output(e) -> Module:
    """The output-stationary style of engine ``e``: a buffer of ``K`` activations (or one streamed
    beside each word), ``lanes`` :class:`Lane` s fed the activation negated once for all, and a
    shadow register that drains a row a beat."""
    cfg = e.config
    m = Module()
    n = cfg.lanes
    nmat = len(cfg.matrices)

    buffered = cfg.sharing == "buffer"
    if buffered:
        mem = m.submodules.act_mem = Memory(shape=ACT_LAYOUT, depth=cfg.max_in, init=[])
        wr = mem.write_port()
        rd = mem.read_port()
        act_data = rd.data
    else:
        act_data = Signal(ACT_LAYOUT)     # stage-1 register of the streamed activation

    kw = max(1, (cfg.max_in - 1).bit_length())
    j = Signal(range(cfg.max_in))
    k_last = Signal(kw)
    r_left = Signal(range(cfg.max_out + 1))
    mat = Signal(range(max(nmat, 2)))
    stg = Signal(range(max(cfg.stages, 2)))

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
    sums_layout = data.ArrayLayout(signed(cfg.acc_width), len(cfg.parts))
    shadow = [Signal(sums_layout, name=f"shadow{l}") for l in range(n)]
    sh_count = Signal(range(n + 1))
    sh_final = Signal()

    lanes = []
    for l in range(n):
        lane = Lane(acc_width=cfg.acc_width, accumulate=cfg.accumulate)
        m.submodules[f"lane{l}"] = lane
        lanes.append(lane)
        m.d.comb += [lane.en.eq(s2_valid), lane.last.eq(s2_last),
                     lane.code.eq(s2_codes[2 * l:2 * l + 2]),
                     lane.p.eq(xp), lane.np.eq(xnp), lane.q.eq(xq), lane.nq.eq(xnq)]

    col_last = j == k_last
    final_pass = (mat == nmat - 1) & (stg == cfg.stages - 1) & (r_left <= n)
    free_next = (sh_count == 0) | ((sh_count == 1) & e.res.ready)
    count = Mux(r_left >= n, n, r_left)
    conj = (mat == nmat - 1) if nmat == 2 else 1

    if buffered:
        m.d.comb += rd.addr.eq(j)
    m.d.sync += s1_valid.eq(0)
    qc = Mux(s1_conj, -act_data.q, act_data.q)
    m.d.sync += [s2_valid.eq(s1_valid), s2_codes.eq(s1_codes), s2_last.eq(s1_last),
                 s2_final.eq(s1_final), s2_count.eq(s1_count),
                 xp.eq(act_data.p), xnp.eq(-act_data.p), xq.eq(qc), xnq.eq(-qc)]

    def load():
        m.d.comb += [wr.addr.eq(j), wr.data.eq(e.act.payload), wr.en.eq(e.act.valid)]
        with m.If(e.act.valid):
            m.d.sync += j.eq(Mux(col_last, 0, j + 1))
            with m.If(col_last):
                m.next = "RUN"

    def accept():
        ready = ~col_last | (free_next & ~(s1_valid & s1_last) & ~(s2_valid & s2_last))
        if buffered:
            m.d.comb += e.wgt.ready.eq(ready)
            take = e.wgt.valid & ready
        else:   # weight and activation beats move together
            m.d.comb += [e.wgt.ready.eq(ready & e.act.valid), e.act.ready.eq(ready & e.wgt.valid)]
            take = e.wgt.valid & e.act.valid & ready
            with m.If(take):
                m.d.sync += act_data.eq(e.act.payload)
        with m.If(take):
            m.d.sync += [s1_valid.eq(1), s1_codes.eq(e.wgt.payload), s1_last.eq(col_last),
                         s1_conj.eq(conj), s1_count.eq(count), s1_final.eq(final_pass & col_last),
                         j.eq(Mux(col_last, 0, j + 1))]
            next_pass(m, cfg, col_last, final_pass, mat, stg, r_left, count)

    layer_fsm(m, e, start=[k_last.eq(e.cmd.payload.k - 1), r_left.eq(e.cmd.payload.rows), j.eq(0),
                           mat.eq(0), stg.eq(0)],
              load=load if buffered else None, accept=accept,
              drained=~s1_valid & ~s2_valid & (sh_count == 0))

    m.d.comb += [e.res.valid.eq(sh_count != 0), e.res.payload.sums.eq(shadow[0]),
                 e.res.payload.last.eq(sh_final & (sh_count == 1))]
    with m.If(s2_valid & s2_last):
        m.d.sync += [sh_count.eq(s2_count), sh_final.eq(s2_final)]
        m.d.sync += [shadow[l].eq(lanes[l].total) for l in range(n)]
    with m.Elif(e.res.valid & e.res.ready):
        m.d.sync += sh_count.eq(sh_count - 1)
        m.d.sync += [shadow[l].eq(shadow[l + 1]) for l in range(n - 1)]
    return m


def assemble_dot(e) -> Module:
    """The dot-product style of engine ``e``: a buffer ``lanes`` banks wide, a :class:`DotLane` per
    bank, an adder tree and one accumulator per sum part."""
    cfg = e.config
    m = Module()
    n = cfg.lanes
    nmat = len(cfg.matrices)
    nparts = len(cfg.parts)
    depth = -(-cfg.max_in // n)
    # the activation buffer: n banks side by side, element j in bank j % n at address j // n
    mem = m.submodules.act_mem = Memory(shape=unsigned(16 * n), depth=depth, init=[])
    wr = mem.write_port(granularity=16)
    rd = mem.read_port()

    j = Signal(range(cfg.max_in))                  # element counter while loading
    bank = Signal(range(max(n, 2)))
    addr = Signal(range(max(depth, 2)))
    last_bank = Signal(range(max(n, 2)))             # bank of element K-1
    c_last = Signal(range(max(depth, 2)))            # address of element K-1 = chunks - 1
    k_last = Signal(max(1, (cfg.max_in - 1).bit_length()))
    chunk = Signal(range(max(depth, 2)))
    r_left = Signal(range(cfg.max_out + 1))
    mat = Signal(range(max(nmat, 2)))
    stg = Signal(range(max(cfg.stages, 2)))

    s1_valid = Signal()
    s1_last = Signal()
    s1_conj = Signal()
    s1_final = Signal()
    s1_codes = Signal(2 * n)
    s2_valid = Signal()
    s2_last = Signal()
    s2_final = Signal()
    s2_codes = Signal(2 * n)
    s2_p = [Signal(signed(9), name=f"s2_p{l}") for l in range(n)]
    s2_q = [Signal(signed(9), name=f"s2_q{l}") for l in range(n)]
    sums_layout = data.ArrayLayout(signed(cfg.acc_width), nparts)
    s3_valid = Signal()
    s3_last = Signal()
    s3_final = Signal()
    s3_tree = Signal(sums_layout)
    acc = Signal(sums_layout)
    out = Signal(sums_layout)
    out_valid = Signal()
    out_final = Signal()

    # lanes and the adder tree
    lanes = []
    for l in range(n):
        lane = m.submodules[f"lane{l}"] = DotLane(accumulate=cfg.accumulate)
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
    with m.If(e.res.valid & e.res.ready):
        m.d.sync += out_valid.eq(0)
    with m.If(s3_valid):
        with m.If(s3_last):
            m.d.sync += [acc.eq(0), out_valid.eq(1), out_final.eq(s3_final)]
            m.d.sync += [out[i].eq(total[i]) for i in range(nparts)]
        with m.Else():
            m.d.sync += [acc[i].eq(total[i]) for i in range(nparts)]
    m.d.comb += [e.res.valid.eq(out_valid), e.res.payload.sums.eq(out),
                 e.res.payload.last.eq(out_final)]

    chunk_last = chunk == c_last
    final_pass = (mat == nmat - 1) & (stg == cfg.stages - 1) & (r_left == 1)
    conj = (mat == nmat - 1) if nmat == 2 else 1
    m.d.comb += rd.addr.eq(chunk)
    m.d.sync += s1_valid.eq(0)

    def load():
        m.d.comb += wr.addr.eq(addr)
        m.d.comb += [wr.data[16 * l:16 * l + 16].eq(e.act.payload) for l in range(n)]
        m.d.comb += [wr.en[l].eq(e.act.valid & (bank == l)) for l in range(n)]
        with m.If(e.act.valid):
            m.d.sync += j.eq(j + 1)
            with m.If(bank == n - 1):
                m.d.sync += [bank.eq(0), addr.eq(addr + 1)]
            with m.Else():
                m.d.sync += bank.eq(bank + 1)
            with m.If(j == k_last):
                m.d.sync += [last_bank.eq(bank), c_last.eq(addr)]
                m.next = "RUN"

    def accept():
        out_free = ~out_valid | e.res.ready
        ready = ~chunk_last | (out_free & ~(s1_valid & s1_last) & ~(s2_valid & s2_last) &
                               ~(s3_valid & s3_last))
        m.d.comb += e.wgt.ready.eq(ready)
        with m.If(e.wgt.valid & ready):
            m.d.sync += [s1_valid.eq(1), s1_codes.eq(e.wgt.payload), s1_last.eq(chunk_last),
                         s1_conj.eq(conj), s1_final.eq(final_pass & chunk_last),
                         chunk.eq(Mux(chunk_last, 0, chunk + 1))]
            next_pass(m, cfg, chunk_last, final_pass, mat, stg, r_left, 1)

    layer_fsm(m, e, start=[k_last.eq(e.cmd.payload.k - 1), r_left.eq(e.cmd.payload.rows), j.eq(0),
                           bank.eq(0), addr.eq(0), chunk.eq(0), mat.eq(0), stg.eq(0)],
              load=load, accept=accept, drained=~s1_valid & ~s2_valid & ~s3_valid & ~out_valid)
    return m
