"""Cycle counts of the generated engine, in pure Python (no HDL import).

The latency functions here are the contract between the RTL, the co-simulation (which measures them
exactly, stall-free) and the performance model.
"""

from __future__ import annotations

import math

__all__ = ["BUFFER_READ_DELAY", "CREDIT_DELAY", "BLOCK_FIFO_LATENCY", "BLOCK_FIFO_MIN_DEPTH", "LINK_DEPTH", "LINK_LATENCY", "SPLIT_LINK_DEPTH", "SPLIT_LINK_LATENCY", "read_cycles", "system_cycles", "engine_cycles", "array_cycles", "array_depth", "tree_levels", "tree_depth", "tile_rows",
           "output_stages", "latency", "pass_count", "result_beats"]


def tile_rows(rows: int, tile: int) -> list[int]:
    """The rows of each row tile of ``tile`` rows a layer of ``rows`` rows is cut into."""
    return [min(tile, rows - r0) for r0 in range(0, rows, tile)]


def tree_levels(cols: int) -> int:
    """Adder levels of an array row's trees: over the ``ceil(cols / 2)`` pair leaves."""
    return max(0, ((cols + 1) // 2 - 1).bit_length())


def tree_depth(cols: int, tree_regs: int) -> int:
    """Registers of an array row's trees: one every ``tree_regs`` adder levels and at the root (the
    leaves feed the first level unregistered; a lone leaf is registered)."""
    return max(1, -(-tree_levels(cols) // tree_regs))


def engine_cycles(k: int, rows: int, *, lanes: int, stages: int, matrices: int,
                  sharing: str = "buffer", lane_style: str = "output") -> int:
    """Cycles from the command's handshake to the last result's handshake, both included, with every
    input valid and the result stream always ready.

    ``2K`` cycles fill the buffer and stream the first pass (``K`` with ``sharing="stream"``, which has
    no buffer to fill); pass ``i`` then ends ``max(K, 2 + c_i)`` cycles after pass ``i - 1``
    (``c_i`` = rows of its tile: a pass cannot end before the previous pass's ``c_i`` results have
    drained), and the last pass's ``c`` results follow it through the two pipeline stages.

    ``lane_style="dot"``: ``K`` cycles fill the buffer; each of the ``P = rows * stages * matrices``
    passes takes ``n = ceil(K / lanes)`` weight words, and a pass ends ``max(n, 4)`` cycles after the one
    before (one result is in flight at a time through the three pipeline stages and the output
    register); the last result leaves 5 cycles after the last word.
    """
    if lane_style == "dot":
        n = -(-k // lanes)
        passes = rows * stages * matrices
        return k + n + (passes - 1) * max(n, 4) + 5
    per_pass = [c for c in tile_rows(rows, lanes) for _ in range(stages * matrices)]
    first = 2 * k if sharing == "buffer" else k
    return first + sum(max(k, 2 + c) for c in per_pass[:-1]) + per_pass[-1] + 3


def latency(cfg, k: int, rows: int) -> int:
    """Cycles of one layer on the engine ``cfg`` (an :class:`~fairyhw.hw.config.EngineConfig`),
    command to last result, with no stalls: :func:`array_cycles` for the array style, else
    :func:`engine_cycles` of its parameters."""
    if cfg.lane_style == "array":
        return array_cycles(k, rows, cfg)
    return engine_cycles(k, rows, lanes=cfg.lanes, stages=cfg.stages, matrices=len(cfg.matrices),
                         sharing=cfg.sharing, lane_style=cfg.lane_style)


def pass_count(cfg, rows: int) -> int:
    """Passes of a layer with ``rows`` rows: one per (row tile, stage, matrix)."""
    return -(-rows // cfg.row_tile) * cfg.stages * len(cfg.matrices)


#: Cycles from the array's read address (the sequencer's chunk) to the activation buffer's read data:
#: the buffer's entry register, a middle copy, the bank's own address register, the block RAM's
#: read, its output register, a fabric register (:class:`fairyhw.hw.buffer.ActBuffer`).
BUFFER_READ_DELAY = 6

#: Cycles from a word entering a :class:`fairyhw.hw.dma.CreditLink` to its being offered at the output.
LINK_LATENCY = 1
#: Words a :class:`fairyhw.hw.dma.CreditLink` holds (its default; the least for full rate is two).
LINK_DEPTH = 3
#: Cycles from a word entering a :class:`fairyhw.hw.dma.SplitLink` to its being offered at the output
#: (the word's notice crosses to the reader's side through a register).
SPLIT_LINK_LATENCY = 2
#: The fewest words a :class:`fairyhw.hw.dma.SplitLink` holds at full rate: a place is known free to
#: the writer four cycles after it is taken at the earliest (offered two cycles on, given out, its
#: notice back through a register).
SPLIT_LINK_DEPTH = 4

#: Cycles from a word entering a :class:`fairyhw.hw.dma.BlockFIFO` (a read master's FIFO) to its being
#: offered at the output: the write registered, the count of words written, the block RAM's read, its
#: output register, the queue.
BLOCK_FIFO_LATENCY = 5

#: The fewest words a :class:`fairyhw.hw.dma.BlockFIFO` holds: a word is counted as stored a cycle
#: after it is taken, so three places keep it at full rate.
BLOCK_FIFO_MIN_DEPTH = 3


def array_depth(cfg) -> int:
    """Pipeline registers of the array style from an accepted weight word to its accumulation: the
    word's slot, then :data:`BUFFER_READ_DELAY` - 1 more while the buffer reads its chunk, the shared
    pair values and plane bits, then the row trees (one register per ``tree_regs`` adder levels,
    :func:`tree_depth`)."""
    return BUFFER_READ_DELAY + 1 + tree_depth(cfg.cols, cfg.tree_regs)


#: Cycles from the end of a tile's drain (its last result beat leaving the drain slot) to the first
#: cycle a pass's last word may take its credit: the result buffer's `freed` register, then the
#: sequencer's credit flag (:class:`fairyhw.hw.sequencer.ArraySequencer`).
CREDIT_DELAY = 2


def output_stages(accumulate: str) -> int:
    """Cycles of the array's result pipeline, from the drain slot to the ``res`` stream: the beat's
    rows selected into a register, then two registers for split sums (``H + X`` and ``X - H``, then
    the parts), three for merged ones (then ``re``, ``im``), and the output FIFO."""
    return 4 if accumulate == "split" else 5


def array_cycles(k: int, rows: int, cfg) -> int:
    """Cycles of one layer on the array style, command handshake to last result handshake, both
    included, no stalls.

    Cycle 0 takes the command, the counters start from it at cycle 1, ``n = ceil(k / cols)`` act
    beats fill the buffer from cycle 2 (the last one is registered when taken and written by the
    buffer's banks :attr:`~fairyhw.hw.buffer.ActBuffer.WRITE_DELAY` cycles after it is taken; the
    first weight word is taken three cycles after the last beat, and its chunk reaches the block
    RAMs after the write), and each pass (row tile, stage, matrix) takes ``n`` weight words, one a
    cycle. The last word of pass ``i``, accepted at cycle ``L_i``, reaches the root ``D``
    (:func:`array_depth`) cycles later and its sums are captured in tile slot A; they move to slot B
    once B is empty, at ``m_i``, and drain one beat a cycle, the ``b_i = ceil(c_i / group)`` beats
    ending at ``e_i``; each beat then crosses the :func:`output_stages` registers. A pass's last word
    waits for a credit (two tiles at most between its acceptance and the end of their drain; the
    credit comes back :data:`CREDIT_DELAY` cycles after the drain's end), and for the cycle in which
    the sequencer counts the pass before it (one-word passes only)::

        L_0 = 2n + 3,   L_i = max(L_{i-1} + max(n, 2), e_{i-2} + CREDIT_DELAY)
        m_i = max(L_i + D + 1, e_{i-1} + 1),   e_i = m_i + b_i

    and the last result is taken at ``e_last + output_stages``. The array never stalls while
    ``b_i + 1 <= n`` and ``D + b_i + CREDIT_DELAY + 1 <= 2n``.
    """
    return _array_schedule(k, rows, cfg)


def result_beats(cfg, rows: int) -> int:
    """Result beats of a layer with ``rows`` rows: one per (row tile, stage, matrix, group of
    ``res_per_beat`` rows)."""
    per = cfg.res_per_beat
    return sum(-(-c // per) for c in tile_rows(rows, cfg.row_tile)) * cfg.stages * len(cfg.matrices)


#: Cycles from the last word of a burst to the first cycle a burst address may take its slot in
#: the read master's own limit of bursts in flight: it counts them in a register and decides from a
#: registered flag (:class:`fairyhw.hw.dma.AxiReader`). The memory's limit frees its slot a cycle
#: after the last word (``sim/axi_memory.py``).
READ_SLOT_DELAY = 2
#: Cycles by which a staged command (:class:`fairyhw.hw.dma.AxiReader` with ``staged``) reaches its
#: master later than it was handed over: it waits a cycle in a register.
STAGED_COMMAND_DELAY = 1
#: Whether the system top's control reader (descriptors, activations) takes its commands staged; the
#: system top builds it so, and :func:`system_cycles` models it so.
CONTROL_READER_STAGED = True


class _ReadPort:
    """One AXI4 read master (:class:`fairyhw.hw.dma.AxiReader`) and its memory, burst by burst, in
    absolute cycles: a burst's address leaves the master once the command is in and the master has
    a burst slot (:data:`READ_SLOT_DELAY` cycles after the last word of the burst
    ``master_outstanding`` before it), and is on the bus :data:`LINK_LATENCY` later, or once the
    memory has a slot (a cycle after the last word of the burst ``outstanding`` before it; the link
    holds :data:`LINK_DEPTH` addresses); its first word comes ``latency + 1`` cycles after it is on
    the bus; words leave in order, at most one a cycle, each spending ``width`` bytes of a budget
    that grows by ``bytes_per_cycle`` a cycle up to two words' worth (the co-simulation's memory
    model, ``sim/axi_memory.py``). The FIFO's credits are left out: they hold the reads back only
    while the consumer is slower than the memory. ``staged``: each command reaches the master
    :data:`STAGED_COMMAND_DELAY` cycles after it is handed over."""

    def __init__(self, *, width, bytes_per_cycle, latency, outstanding, master_outstanding, max_burst,
                 staged=False):
        self.w, self.rate, self.latency = width, float(bytes_per_cycle), latency
        self.delay = STAGED_COMMAND_DELAY if staged else 0
        self.out, self.mem_out, self.max_burst = master_outstanding, outstanding, max_burst
        self.kb, self.b = -(10 ** 9), 2.0 * width      # the budget after edge kb (idle: full)
        self.last = -(10 ** 9)                          # the last word's cycle
        self.done = []                                  # each burst's last word, in order
        self.bus = []                                   # each burst's address on the bus

    def _budget(self, k):
        return min(2.0 * self.w, self.b + (k - self.kb) * self.rate)

    def burst(self, earliest, beats):
        """A burst of ``beats`` words whose address may go out from cycle ``earliest``: (the address's
        cycle, each word's cycle)."""
        a = earliest
        if len(self.done) >= self.out:
            a = max(a, self.done[-self.out] + READ_SLOT_DELAY)
        if len(self.bus) >= LINK_DEPTH:                 # the link holds LINK_DEPTH addresses
            a = max(a, self.bus[-LINK_DEPTH] + 1)
        bus = a + LINK_LATENCY                          # through the master's address link
        if len(self.done) >= self.mem_out:
            bus = max(bus, self.done[-self.mem_out] + 1)
        self.bus.append(bus)
        times = []
        k = max(bus + 1 + self.latency, self.last + 1)
        for _ in range(beats):
            b = self._budget(k)
            if b < self.w:
                k += max(1, math.ceil((self.w - b) / self.rate - 1e-9))
                b = self._budget(k)
            times.append(k)
            self.kb, self.b = k + 1, min(2.0 * self.w, b - self.w + self.rate)
            self.last = k
            k += 1
        self.done.append(self.last)
        return a, times

    def command(self, h, words, offset=0):
        """A command of ``words`` words from byte ``offset`` of a 4 KB aligned region, taken at cycle
        ``h``: (the cycle its last address goes out, each word's cycle). A burst's address goes out
        two cycles after the command reaches the master or after the burst before at the earliest
        (the master sizes it in between)."""
        a, times = h + self.delay, []
        left, addr = words, offset
        while left:
            n = min(left, self.max_burst, (4096 - addr % 4096) // self.w)
            a, t = self.burst(a + 2, n)
            times += t
            left -= n
            addr += n * self.w
        return a, times


def read_cycles(beats: int, *, width: int, bytes_per_cycle: float, latency: int, outstanding: int,
                max_burst: int, master_outstanding: int) -> int:
    """Cycles for the AXI read master (:class:`fairyhw.hw.dma.AxiReader`) to deliver ``beats`` words
    of ``width`` bytes, command to last word (both counted), from a memory of ``bytes_per_cycle``
    bandwidth, ``latency`` cycles from a burst's address to its first word, and at most
    ``outstanding`` bursts in flight in the memory and ``master_outstanding`` in the master, starting
    from an idle memory at a 4 KB boundary; the consumer never stalls. :class:`_ReadPort` follows the
    bursts; the last word leaves the master's FIFO :data:`BLOCK_FIFO_LATENCY` cycles after it is on the bus. Checked against
    co-simulation (``sim/test_dma.py``)."""
    port = _ReadPort(width=width, bytes_per_cycle=bytes_per_cycle, latency=latency,
                     outstanding=outstanding, master_outstanding=master_outstanding, max_burst=max_burst)
    _, t = port.command(0, beats)
    return t[-1] + BLOCK_FIFO_LATENCY


_engine_latency = latency

#: Cycles of the system top's write tail beside the final burst's words and the last result's
#: words, measured once in co-simulation (sim/test_system.py checks that it holds at every point):
#: the words counted, the burst's length and go registered, its command, its address, the FIFO, the
#: write master's data link, the response, the writer going quiet, the layer's end registered and the
#: layer's end state (NEXT), the register slice between the packer and the FIFO, and the credit link
#: between the engine and the packer.
SYSTEM_WRITE_EXTRA = 13
#: The cycle by which a registered unpacker (the activations', the descriptor's) offers an item of
#: several memory words later than the cycle after its last word (each word is written into the item
#: a cycle after it is taken).
UNPACK_DELAY = 1
#: Cycles from the result beat that ends a memory word (or, wider than a word, begins one) to that
#: word's entering the packer's output link: the word is handed over from registers.
PACK_DELAY = 1
#: The fewest cycles from a weight pass's command to the next pass's (a port's end and last-byte
#: addresses move on in the two cycles after its command, and the next pass waits for them).
PASS_SPACING = 4
#: Cycles of a run before its first descriptor fetch: the START state, which sets the run up from
#: registers the cycle after the ``start`` pulse.
RUN_START = 1


def system_cycles(cfg, layers, *, bytes_per_cycle: float, latency: int, outstanding: int) -> dict:
    """Cycles of a run of the system top (:class:`fairyhw.hw.system.SystemTop`) on the array style,
    ``start`` to idle, for ``layers`` (``(k, rows)`` each, one descriptor list), every read port on a
    memory of ``bytes_per_cycle`` bandwidth, ``latency`` cycles from a burst's address to its first
    word and at most ``outstanding`` bursts in flight; writes answered at once.

    Every word a read master delivers is offered :data:`BLOCK_FIFO_LATENCY` cycles after it arrives.
    A cycle to start the run (the state after ``start``), then per layer: the descriptor's fetch
    (its command through the control reader's register, :data:`STAGED_COMMAND_DELAY`; its last word, its credit link, then the descriptor unpacked and taken: a cycle more,
    :data:`UNPACK_DELAY`, where it is several words), a cycle to check it, the divider
    (``bits(max_in) + 1`` cycles), a cycle to size the transfers and two per weight port (its
    addresses' low halves, then their high halves); then the run: the engine's command, the
    activation read (its words through a credit link) and (a cycle later) the first pass's weight
    command, one weight command a pass (:data:`PASS_SPACING` cycles apart at least, and once the one
    before has all its addresses out), each port's words from :class:`_ReadPort`. The array's
    schedule (:func:`array_cycles`) then holds with two more bounds: the activations' last beat
    (``A``) and each pass's last weight word (``W_i``, the cycle it is offered by the master's FIFO,
    then the credit link before its unpacker and the split link after it, a cycle more through a
    wide slice's unpacker) bound the last word of pass 0 and of pass ``i``::

        L_0 = max(2n + 3, A + n + 2, W_0),
        L_i = max(L_{i-1} + max(n, 2), e_{i-2} + CREDIT_DELAY, W_i)

    and the run ends with the write tail: the last pass's result beats through the packer (a beat of
    ``m`` memory words takes ``m`` cycles), the final burst's words, :data:`SYSTEM_WRITE_EXTRA`.

    Returns ``{"cycles", "compute", "layers": [{"cycles", "compute", "bound"}]}`` (the run's, the
    start cycle included; each layer's from its fetch): ``compute`` is the run or layer
    had every weight word come as soon as the array takes it (no ``W_i`` bound); ``bound`` is
    ``"compute"`` where the weight stream never held the array."""
    from .config import slot_bits
    e = cfg.engine
    if e.lane_style != "array":
        raise ValueError("system_cycles models the array style")
    wb, D = cfg.word_bytes, cfg.data_width
    knobs = dict(width=wb, latency=latency, outstanding=outstanding,
                 master_outstanding=cfg.outstanding, max_burst=cfg.max_burst)
    desc_words = max(1, 64 // wb)
    desc_wide = 512 > D
    total, per = 0, []
    ctrl = _ReadPort(bytes_per_cycle=bytes_per_cycle, staged=CONTROL_READER_STAGED, **knobs)
    wgt = _ReadPort(bytes_per_cycle=bytes_per_cycle, **knobs)
    t0 = 0                                   # the layer's first cycle (FETCH)
    total += RUN_START
    for k, rows in layers:
        _, t = ctrl.command(t0, desc_words)
        run0 = (t[-1] + BLOCK_FIFO_LATENCY + LINK_LATENCY + (1 + UNPACK_DELAY if desc_wide else 0) + 1
                + e.max_in.bit_length()
                + 1 + 1 + 2 * cfg.weight_ports)
        # activations: beat j once its last word is through the FIFO and the credit link (and, if
        # a beat is several words, written into the unpacker's item: UNPACK_DELAY)
        n_act = cfg.act_items(k)
        _, t = ctrl.command(run0, cfg.act_memory_words(k))
        slot = slot_bits(cfg.act_bits, D)
        if slot > D:
            kw = slot // D
            avail = [t[(j + 1) * kw - 1] + BLOCK_FIFO_LATENCY + LINK_LATENCY + UNPACK_DELAY
                     for j in range(n_act)]
        else:
            per_word = D // slot
            avail = [t[j // per_word] + BLOCK_FIFO_LATENCY + LINK_LATENCY - 1 for j in range(n_act)]
        a = None
        for v in avail:
            a = max(run0 + 2, v) if a is None else max(a + 1, v)
        act_last = a - run0
        # the weight passes: one command a pass on each port (the ports are alike: one is followed)
        pmw = cfg.pass_memory_words(k)
        wide = slot_bits(cfg.slice_bits, D) > D
        h, last_a, ready, offset = run0 + 1, None, [], 0
        for i in range(pass_count(e, rows)):
            if i:
                h = max(h + PASS_SPACING, last_a + 1)
            last_a, t = wgt.command(h, pmw, offset)
            offset += pmw * wb
            ready.append(t[-1] + BLOCK_FIFO_LATENCY - 1 + LINK_LATENCY + SPLIT_LINK_LATENCY
                         + (1 if wide else 0) - run0)
        # the write tail: the last pass's result beats leave the engine a cycle apart, but a beat of
        # `item` words takes `item` cycles through the packer (and a cycle more from its registers
        # into its output link: PACK_DELAY); then the final burst and its response
        res_words = cfg.result_memory_words(rows)
        item = max(1, slot_bits(cfg.result_bits, D) // D)
        b_last = -(-tile_rows(rows, e.rows)[-1] // e.group)
        tail = (item + (b_last - 1) * (item - 1) + PACK_DELAY
                + res_words - (res_words - 1) // cfg.max_burst * cfg.max_burst + SYSTEM_WRITE_EXTRA)
        cyc = run0 - t0 + _array_schedule(k, rows, e, act_last=act_last, ready=ready) + tail
        compute = run0 - t0 + _array_schedule(k, rows, e, act_last=act_last) + tail
        per.append({"cycles": cyc, "compute": compute, "bound": "compute" if cyc == compute else "memory"})
        total += cyc
        t0 += cyc
    return {"cycles": total, "compute": RUN_START + sum(p["compute"] for p in per), "layers": per}


def _array_schedule(k, rows, cfg, *, act_last=None, ready=None) -> int:
    """:func:`array_cycles` with the activations' last beat taken at cycle ``act_last`` at the
    earliest and pass ``i``'s last word at ``ready[i]`` (see :func:`system_cycles`)."""
    n = -(-k // cfg.cols)
    d = array_depth(cfg)
    beats = [-(-c // cfg.group) for c in tile_rows(rows, cfg.rows)
             for _ in range(cfg.stages * len(cfg.matrices))]
    e = [-(10 ** 9), -(10 ** 9)]         # drain ends of the two passes before (none yet)
    last = None
    for i, b in enumerate(beats):
        if last is None:
            last = max(2 * n + 3, (act_last if act_last is not None else 0) + n + 2)
        else:
            last = max(last + max(n, 2), e[-2] + CREDIT_DELAY)
        if ready is not None:
            last = max(last, ready[i])
        move = max(last + d + 1, e[-1] + 1)
        e.append(move + b)
    return e[-1] + output_stages(cfg.accumulate) + 1
