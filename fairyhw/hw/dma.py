"""AXI4 masters: the read master (:class:`AxiReader`: a command ``(address, beats)`` in, the words
read from memory out, in order) and the write master (:class:`AxiWriter`: a command and the words in,
written to memory).

Bursts are INCR, at most ``max_burst`` beats, never across a 4 KB boundary (an AXI rule). Reads are
issued ahead, up to ``outstanding`` bursts, but only while the FIFO has room for every beat already
asked for: so ``r.ready`` is always high (the memory is never held) and a slow consumer stops the
requests, not the bus. Size the FIFO for the memory's latency: at ``L`` cycles of read latency a FIFO
of about ``L`` beats keeps one beat a cycle flowing.

A master takes its next command as soon as the last burst address of the one before has gone out, so
commands follow one another with no gap on the bus (their data stay in order). With ``staged`` a
command first waits a cycle in a register of the master's own, and ``cmd.ready`` says only that this
register is empty (:data:`~fairyhw.hw.timing.STAGED_COMMAND_DELAY`). ``error`` is sticky
until reset. ``abort`` stops issuing bursts (the read master also drops its data); a burst address
already offered stays offered until the memory takes it, as AXI asks; ``quiet`` says that no burst is
in flight, so that the master can then be reset without breaking the AXI protocol.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .buffer import KEEP
from .config import HALF, validating
from .timing import BLOCK_FIFO_LATENCY, BLOCK_FIFO_MIN_DEPTH, LINK_DEPTH, SPLIT_LINK_DEPTH

__all__ = ["axi_read_signature", "axi_write_signature", "AxiReader", "AxiWriter", "CreditLink",
           "SplitLink", "BlockFIFO", "INCR", "add_in_halves"]

#: AXI burst type INCR.
INCR = 1


def _address_layout(addr_width: int) -> data.StructLayout:
    """An AXI4 address channel's payload (ID 0, INCR bursts)."""
    return data.StructLayout({"addr": addr_width, "len": 8, "size": 3, "burst": 2})


def axi_read_signature(addr_width: int, data_width: int) -> wiring.Signature:
    """The read half of an AXI4 manager (ID 0): ``ar`` out, ``r`` in."""
    return wiring.Signature({
        "ar": Out(stream.Signature(_address_layout(addr_width))),
        "r": In(stream.Signature(data.StructLayout({"data": data_width, "resp": 2, "last": 1}))),
    })


def axi_write_signature(addr_width: int, data_width: int) -> wiring.Signature:
    """The write half of an AXI4 manager (ID 0): ``aw``, ``w`` out, ``b`` in."""
    return wiring.Signature({
        "aw": Out(stream.Signature(_address_layout(addr_width))),
        "w": Out(stream.Signature(data.StructLayout({"data": data_width, "strb": data_width // 8,
                                                     "last": 1}))),
        "b": In(stream.Signature(data.StructLayout({"resp": 2}))),
    })


#: Bits of an address's high half selected by one copy of its carry (:func:`add_in_halves`).
CARRY_GROUP = 8
#: Bits of a :class:`CreditLink`'s RAM addressed by one copy of its pointers.
LINK_PART = 64


def add_in_halves(m: Module, acc: Signal, addend, when, *, name: str, registered: bool = False):
    """``acc += addend`` in the cycles ``when``, in two halves: the low :data:`HALF` bits that cycle
    (their carry into a register), the high bits the cycle after, chosen by the carry between two
    sums made every cycle beforehand from registers (with a 64-bit carry chain behind a handshake,
    or the high half's adder behind its enable, each sum was on the system top's failing paths).
    ``registered``: the low half's sum made a cycle before too (a register; so ``acc`` and
    ``addend`` must not change in the cycle before ``when``). ``when`` must not come in two cycles
    in a row; a later assignment to ``acc`` in the module's code (a new value) takes precedence, as
    usual. Returns the signal high in the cycle that completes the sum (``acc`` whole the cycle
    after it). Narrow sums are made at once (the returned signal then never high)."""
    addend = Value.cast(addend)
    due = Signal(name=f"{name}_hi_due")
    if len(acc) <= HALF:
        with m.If(when):
            m.d.sync += acc.eq(acc + addend)
        return due
    lo = Signal(HALF + 1, name=f"{name}_lo")
    if registered:
        m.d.sync += lo.eq(acc[:HALF] + addend[:HALF])
    else:
        m.d.comb += lo.eq(acc[:HALF] + addend[:HALF])
    width = len(acc) - HALF
    high = addend[HALF:]
    sums = [Signal(width, name=f"{name}_hi{c}") for c in (0, 1)]
    if len(high):
        m.d.sync += sums[0].eq(acc[HALF:] + high)
    else:
        m.d.comb += sums[0].eq(acc[HALF:])
    m.d.sync += [sums[1].eq(acc[HALF:] + high + 1), due.eq(0)]
    # the carry in copies (KEEP), one a CARRY_GROUP bits of the high half (one register selecting
    # all of them was 32 failing endpoints of the system top, a 6 ns route to the address's bits)
    groups = range(0, width, CARRY_GROUP)
    carry = [Signal(name=f"{name}_carry{g // CARRY_GROUP}", attrs=KEEP) for g in groups]
    with m.If(due):
        m.d.sync += [acc[HALF + g:HALF + g + CARRY_GROUP].eq(
            Mux(c, sums[1][g:g + CARRY_GROUP], sums[0][g:g + CARRY_GROUP])) for c, g in zip(carry, groups)]
    with m.If(when):
        m.d.sync += [acc[:HALF].eq(lo[:HALF]), due.eq(1)] + [c.eq(lo[HALF]) for c in carry]
    return due


class _Bursts(NamedTuple):
    """What :meth:`_AxiMaster._addresses` gives its master."""
    none_left: Value    # every burst address of the command is out (a register)
    n: Value            # the beats of the burst offered (a register)
    n_m1: Value         # n - 1 (a register)
    sent: Value         # a burst address is taken now
    take: Value         # a command is taken now
    cmd: Value          # the command as taken (see _command)
    held: Value         # a staged command waits in the master's register


class _AxiMaster(wiring.Component):
    """What the read and write masters share: the parameters, the ``cmd``, ``busy`` and ``error``
    ports, the command as taken (:meth:`_command`) and the address channel (:meth:`_addresses`)."""

    def __init__(self, members: dict, *, addr_width, data_width, max_burst, outstanding, beats_width,
                 staged=False):
        with validating(self):
            if data_width not in (32, 64, 128, 256, 512, 1024):
                raise ValueError(f"data_width must be a power of two from 32 to 1024, not {data_width!r}")
            if not 1 <= max_burst <= 256:
                raise ValueError(f"max_burst must be from 1 to 256 beats, not {max_burst!r}")
            if not 1 <= outstanding <= 64:
                raise ValueError(f"outstanding must be from 1 to 64, not {outstanding!r}")
            if not isinstance(beats_width, int) or not 1 <= beats_width <= 32:
                raise ValueError(f"beats_width must be from 1 to 32 bits, not {beats_width!r}")
            if not isinstance(staged, bool):
                raise ValueError(f"staged must be True or False, not {staged!r}")
        self.beats_width, self.staged = beats_width, staged
        self.addr_width, self.data_width = addr_width, data_width
        self.max_burst, self.outstanding = max_burst, outstanding
        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout({"addr": addr_width, "beats": beats_width}))),
            **members,
            "busy": Out(1),
            "error": Out(1),
            "abort": In(1),
            "quiet": Out(1),
        })

    def _command(self, m, ready):
        """The command as the master takes it, ``(take, payload, held)``, the master ready for one
        while ``ready``: ``cmd`` itself, or with ``staged`` a register of it (a cycle later,
        :data:`~fairyhw.hw.timing.STAGED_COMMAND_DELAY`: ``cmd.ready`` then says only that the
        register is empty, so the command's source reaches that register alone, not the ~250
        flip-flops that a command loads; ``held``: a command waits there). ``take``: a command is
        taken now. A staged command is dropped on ``abort``."""
        if not self.staged:
            m.d.comb += self.cmd.ready.eq(ready)
            return self.cmd.valid & self.cmd.ready, self.cmd.payload, Const(0)
        q_valid = Signal(name="cmd_held")
        q = Signal.like(self.cmd.payload, name="cmd_q")
        m.d.comb += self.cmd.ready.eq(~q_valid & ~self.abort)
        with m.If(~q_valid):                              # (loaded while empty: no handshake in its enable)
            m.d.sync += [q.eq(self.cmd.payload), q_valid.eq(self.cmd.valid & ~self.abort)]
        take = q_valid & ready
        with m.If(take | self.abort):
            m.d.sync += q_valid.eq(0)
        return take, q, q_valid

    def _addresses(self, m, chan, allow):
        """Drive address channel ``chan``: the command's bursts, each at most ``max_burst`` beats,
        what is left, and the beats to the 4 KB boundary, offered while ``allow`` held in the cycle
        before. Returns :class:`_Bursts`.

        ``allow`` says that a whole burst of ``max_burst`` beats fits the resources it counts (FIFO
        room, burst slots); it is taken into a register. Those resources only grow until a burst goes
        out, and the cycle after one goes out offers none, so the flag is never too generous; a freed
        resource is seen a cycle later. (The FIFO room compared with the burst's beats in front of the
        handshake was the system top's critical path at 106.6 MHz; the same comparison into a
        register, after the burst sizing, at 94.6 MHz.)

        ``none_left`` (whether every burst's address is out) and ``n`` are registers. ``n`` is
        computed in the cycle after the address and the beats left change (the burst sizing in
        front of the address channel's handshake and the FIFO's credit was the ECP5 critical path
        of the system top at 65.7 MHz): a burst's address goes out two cycles after the one before
        at the earliest, two after its command. The sizing sees the beats left (``beats_width``
        bits, the width of the longest command) only through registered flags (``left >= max_burst``, ``left > max_burst``, set from the command or from
        ``left >= n + max_burst`` when a burst goes out) and its low bits: with the three 32-bit
        comparisons in series it was the system top's critical path at 99.3-101.3 MHz.

        Every sum that a handshake decides is made before it, from registers, and the handshake
        only selects (``to_4k`` and ``n - 1`` are kept beside their values, and the 4 KB distance a
        burst leaves is made beside ``n`` for both of its sizes; the address moves on in
        two 32-bit halves, the high one a cycle later, while no address is offered): a handshake
        reaches a register through a LUT or two, never through a carry chain.
        """
        shift = (self.data_width // 8).bit_length() - 1
        mb = self.max_burst
        lw = mb.bit_length()                              # bits of a count below max_burst
        addr = Signal(self.addr_width)
        left = Signal(self.beats_width)
        big, over = Signal(), Signal()                    # left >= max_burst, left > max_burst
        # the beats to the 4 KB boundary, a register kept beside `addr` (from `addr` through a
        # subtractor into the burst sizing's comparison, two carry chains in series, it was the read
        # master's critical path alone at 162.4 MHz): set from a command's address, less each burst
        # (a whole page's beats where a burst ends on the boundary)
        page = 4096 >> shift
        to_4k = Signal(range(page + 1))
        to_4k_m1 = Signal(range(page))                    # == to_4k - 1, kept beside it
        want, n = Signal(range(mb + 1)), Signal(range(mb + 1))
        n_mb = Signal(range(2 * mb + 1))                  # == n + max_burst
        n_m1 = Signal(range(mb + 1))                      # == n - 1 (where n != 0)
        fresh = Signal()                                  # n is for the current addr and left
        n_all = Signal()                                  # == (n == left): the command's last burst
        m.d.comb += want.eq(Mux(big, mb, left[:lw]))
        to_end = to_4k < want
        n_v = Mux(to_end, to_4k, want)
        # n - 1 from values less one made beside them, chosen by the same comparison (n's own
        # subtractor after the comparison was the read masters' worst path in the system)
        n_m1_v = Mux(to_end, to_4k_m1, Mux(big, mb - 1, left[:lw] - 1))
        allowed = Signal()
        # `some` == (n != 0), a register (through the burst length's subtractor it was in front of
        # every use of the address channel's handshake); from the beats wanted alone, since a
        # word-aligned address always leaves a word before the next 4 KB boundary (`to_4k` >= 1)
        some = Signal()
        # (`n_all`: with `big` the burst is `max_burst` beats unless the page ends first, and the last
        # unless more are left; without, it is all that is left unless the page ends first. As the
        # equality of the sized burst with either, two comparisons after the sizing's select, it was
        # on the weight master's failing paths at every placement of the system top)
        m.d.sync += [n.eq(n_v), some.eq(big | (left[:lw] != 0)), n_mb.eq(n_v + mb), n_m1.eq(n_m1_v), fresh.eq(1),
                     allowed.eq(allow),
                     n_all.eq(~to_end & ~(big & over))]
        # AXI asks that an address, once offered, stay offered and unchanged until its handshake: so
        # `abort` stops the addresses through `gate`, a register (`abort` not seen as of the cycle
        # before, or an address offered and not taken), and leaves the burst counts alone while an
        # address is offered (`quiet` then waits for it to go out and end). With `abort` itself in
        # `valid`, `valid` fell without a handshake when `abort` rose while the memory held `ready`
        # low; and from a register, `abort` is not in front of the handshake's logic.
        gate = Signal(init=1)
        m.d.sync += gate.eq(~self.abort | (chan.valid & ~chan.ready))
        m.d.comb += [chan.valid.eq(fresh & some & allowed & gate),
                     chan.payload.addr.eq(addr), chan.payload.len.eq(n - 1),
                     chan.payload.size.eq(shift), chan.payload.burst.eq(INCR)]
        sent = chan.valid & chan.ready
        # `none_left` == (left == 0), a register (the comparison in front of ``cmd.ready`` was on the
        # system top's critical path)
        none_left = Signal(init=1)
        take, cmd, held = self._command(m, none_left & ~self.abort)
        # the address moves on by a burst in two halves, the high one a cycle later, while `fresh`
        # is low (no address is offered in the cycle after a burst; a command's address overrides)
        add_in_halves(m, addr, n << shift, sent, name="addr")
        # the 4 KB distance a burst leaves, made beside `n` from the same registers for both of its
        # sizes (the page's end, n == to_4k where to_4k <= want; or the beats wanted, n == want), so
        # the handshake only selects (the subtractor and the page end's comparison after `n`, in
        # front of the handshake, were the system top's critical path at 159.4 MHz)
        ends = Signal()                                   # the burst ends the page
        rest, rest_m1 = Signal.like(to_4k), Signal.like(to_4k_m1)     # == to_4k - want, to_4k_m1 - want
        m.d.sync += [ends.eq(to_4k <= want), rest.eq(to_4k - want), rest_m1.eq(to_4k_m1 - want)]
        with m.If(sent):
            m.d.sync += [to_4k.eq(Mux(ends, page, rest)), to_4k_m1.eq(Mux(ends, page - 1, rest_m1)),
                         left.eq(left - n), none_left.eq(n_all), fresh.eq(0),
                         big.eq(left >= n_mb), over.eq(left > n_mb)]
        with m.If(take):
            beats = cmd.beats
            m.d.sync += [addr.eq(cmd.addr), to_4k.eq((4096 - cmd.addr[:12]) >> shift),
                         to_4k_m1.eq((4096 - (1 << shift) - cmd.addr[:12]) >> shift),
                         left.eq(beats), none_left.eq(beats == 0),
                         fresh.eq(0), big.eq(beats >= mb), over.eq(beats > mb)]
        with m.If(self.abort & ~chan.valid):
            m.d.sync += [left.eq(0), none_left.eq(1), big.eq(0), over.eq(0)]
        return _Bursts(none_left, n, n_m1, sent, take, cmd, held)


class AxiReader(_AxiMaster):
    """Reads ``beats`` words of ``data_width`` bits from byte address ``addr`` (word-aligned).

    Ports: ``cmd`` (in: ``addr``, ``beats``; taken once the addresses of the one before are out),
    ``data`` (out: the words), ``axi`` (:func:`axi_read_signature`), ``busy`` (words not yet
    delivered), ``error`` (a read answered other than OKAY since reset; its data are delivered all
    the same), ``abort``, ``quiet`` (see the module). ``beats_width``: bits of a command's
    ``beats`` (the system top sizes it for its longest command; narrower counts, shorter chains).
    """

    def __init__(self, *, addr_width: int = 32, data_width: int = 64, max_burst: int = 16,
                 outstanding: int = 4, fifo_depth: int = 64, beats_width: int = 32, staged: bool = False):
        with validating(self):
            if fifo_depth < max_burst:
                raise ValueError(f"fifo_depth ({fifo_depth}) must hold a burst ({max_burst} beats)")
        self.fifo_depth = fifo_depth
        super().__init__({"data": Out(stream.Signature(data_width)),
                          "axi": Out(axi_read_signature(addr_width, data_width))},
                         addr_width=addr_width, data_width=data_width, max_burst=max_burst,
                         outstanding=outstanding, beats_width=beats_width, staged=staged)

    def elaborate(self, platform):
        m = Module()
        fifo = m.submodules.fifo = BlockFIFO(self.data_width, self.fifo_depth, credited=True)
        owed = Signal(max(self.beats_width, self.fifo_depth.bit_length()) + 1)   # beats not yet delivered
        space = Signal(range(self.fifo_depth + 1), init=self.fifo_depth)   # FIFO room not yet asked for
        # the bursts requested and those whose last beat came in, each counted on its own handshake
        # (modulo 2**w, above `outstanding`): their difference is the bursts in flight. (As one count
        # up and down, both handshakes and the address's `valid` were four LUTs in front of it: the
        # system top's critical path in one placement, 149.6 MHz)
        w = self.outstanding.bit_length()
        asked, came = Signal(w), Signal(w)
        inflight = Signal(w)                                # bursts requested, last beat not yet in
        m.d.comb += inflight.eq(asked - came)
        # the addresses leave through a credit link (LINK_LATENCY), so that the memory's `arready`
        # reaches only its pointers, not the burst state's ~100 flip-flops
        ar_link = m.submodules.ar_link = CreditLink(self.axi.ar.signature.members["payload"].shape)
        wiring.connect(m, ar_link.o, wiring.flipped(self.axi.ar))
        none_left, n, n_m1, issued, take, cmd, held = self._addresses(m, ar_link.i,
                                               (space >= self.max_burst) & (inflight < self.outstanding))
        r = self.axi.r
        # the FIFO always has room: the reads ask for no more than it holds
        m.d.comb += [r.ready.eq(1), fifo.i.valid.eq(r.valid), fifo.i.payload.eq(r.payload.data)]
        # the words out, or dropped while aborting
        m.d.comb += [self.data.valid.eq(fifo.o.valid & ~self.abort), self.data.payload.eq(fifo.o.payload),
                     fifo.o.ready.eq(self.data.ready | self.abort)]

        burst_done = r.valid & r.payload.last
        delivered = fifo.o.valid & fifo.o.ready
        # the burst's and the word's handshakes select between sums made beforehand (in front of the
        # room's carry chain, they were the read master's critical path alone at 155.3 MHz)
        # a word's room is given back a cycle after it leaves (`freed`, a register: the consumer's
        # handshake, from beside the consumer, in front of the room's select was the read masters'
        # worst path in the system); the reads stay within the FIFO, a cycle more cautious
        freed = Signal()
        m.d.sync += freed.eq(delivered)
        m.d.sync += [space.eq(Mux(issued, Mux(freed, space - n_m1, space - n),
                                  Mux(freed, space + 1, space)))]
        with m.If(issued):
            m.d.sync += asked.eq(asked + 1)
        with m.If(burst_done):
            m.d.sync += came.eq(came + 1)
        with m.If(r.valid & (r.payload.resp != 0)):
            m.d.sync += self.error.eq(1)

        m.d.comb += [self.busy.eq((owed != 0) | held),
                     self.quiet.eq((asked == came) & none_left & ~held)]
        m.d.sync += owed.eq(owed + Mux(take, cmd.beats, 0) - delivered)
        return m


class AxiWriter(_AxiMaster):
    """Writes ``beats`` words of ``data_width`` bits, taken from ``data``, to byte address ``addr``
    (word-aligned), all bytes enabled.

    Burst addresses run ahead of the data, up to ``outstanding`` bursts without a response; each
    burst's beats follow on ``w`` in order, ``last`` on its final one. Ports: ``cmd`` (in: ``addr``,
    ``beats``; taken once the addresses of the one before are out), ``data`` (in: the words), ``axi``
    (:func:`axi_write_signature`), ``busy`` (until the last response), ``error`` (a response other
    than OKAY since reset), ``abort``, ``quiet`` (see the module). Every burst whose address is out
    takes its data, abort or not.
    """

    def __init__(self, *, addr_width: int = 32, data_width: int = 64, max_burst: int = 16,
                 outstanding: int = 4, beats_width: int = 32, staged: bool = False):
        super().__init__({"data": In(stream.Signature(data_width)),
                          "axi": Out(axi_write_signature(addr_width, data_width))},
                         addr_width=addr_width, data_width=data_width, max_burst=max_burst,
                         outstanding=outstanding, beats_width=beats_width, staged=staged)

    def elaborate(self, platform):
        m = Module()
        # the bursts owed data: a credit link (its flags registers; a `SyncFIFO`'s level behind both
        # handshakes was on the write master's failing paths)
        lens = m.submodules.lens = CreditLink(unsigned(9), max(2, self.outstanding))
        pending = Signal(range(self.outstanding + 1))      # bursts sent, response not yet back
        # the address and data channels leave through credit links (LINK_LATENCY each), so that the
        # memory's `awready` and `wready` reach only the links' pointers: with `wready` in front of
        # the burst's head, its beat count and the result FIFO's handshake, and `awready` in front
        # of the address's ~100 flip-flops, they were the system top's worst paths (96.7 MHz)
        aw_link = m.submodules.aw_link = CreditLink(self.axi.aw.signature.members["payload"].shape)
        wl = data.StructLayout({"data": self.data_width, "last": 1})
        w_link = m.submodules.w_link = CreditLink(wl, ready_copy=True)
        wiring.connect(m, aw_link.o, wiring.flipped(self.axi.aw))
        m.d.comb += [self.axi.w.valid.eq(w_link.o.valid), w_link.o.ready.eq(self.axi.w.ready),
                     self.axi.w.payload.data.eq(w_link.o.payload.data),
                     self.axi.w.payload.last.eq(w_link.o.payload.last), self.axi.w.payload.strb.eq(-1)]
        bursts = self._addresses(m, aw_link.i, (pending < self.outstanding) & lens.i.ready)
        none_left, n, sent, held = bursts.none_left, bursts.n, bursts.sent, bursts.held
        w, b = w_link.i, self.axi.b

        # the burst whose data go out now (the head), from registers: whether there is one, the beats
        # after the next, and whether the next is its last (the burst-length FIFO's output through the
        # beat count's comparison into `wlast` and back into the FIFO's level was the system top's
        # critical path at 111.2 MHz). A burst goes to the head from the FIFO, or straight from the
        # address channel when the FIFO is empty and the head free, so the data follow its address
        # a cycle later, as they would through the FIFO.
        head, last = Signal(), Signal()
        rem = Signal(8)
        # (the data link's readiness from its register copy for the head's own state and the FIFO's
        # handshake: through the link's LUT of its handshake, placed by its pointers, the head's
        # registers paid a 3-3.8 ns route there and back: the system top's critical path in the
        # heap-timing placements at 91.7 and 112.3 MHz)
        fire = self.data.valid & head & w_link.ready_copy
        free = ~head | (fire & last)
        queued = lens.o.valid
        direct = free & ~queued & sent
        # a burst's beats after the next and whether it has one beat, kept in the FIFO as such (its
        # length through a subtractor and a comparison after the FIFO's read was the write master's
        # critical path alone at 168.8 MHz)
        n_rem, n_one = Signal(8), Signal()
        m.d.comb += [n_rem.eq(n - 2), n_one.eq(n == 1)]
        rem_v = Mux(queued, lens.o.payload[:8], n_rem)
        one_v = Mux(queued, lens.o.payload[8], n_one)
        m.d.comb += [lens.i.valid.eq(sent & ~direct), lens.i.payload.eq(Cat(n_rem, n_one)),
                     lens.o.ready.eq(free),
                     w.valid.eq(self.data.valid & head), self.data.ready.eq(w_link.ready_copy & head),
                     w.payload.data.eq(self.data.payload), w.payload.last.eq(last)]
        # the head's next state as a choice by `fire`, the last to settle, between its outcomes
        # made from registers (load / free / fire in priority, fire in front of each, was the
        # system top's critical path at 145.2 MHz: four LUTs into `rem`). With fire (so a head):
        # its last beat frees the head for a burst queued or sent now; else a beat less. Without:
        # a free head takes such a burst.
        new = queued | sent
        take_f = last & new                              # == load, where fire
        take_n = ~head & new                             # == load, where not fire
        m.d.sync += [head.eq(Mux(fire, ~last | new, head | new)),
                     rem.eq(Mux(fire, Mux(take_f, rem_v, Mux(last, rem, rem - 1)),
                                Mux(take_n, rem_v, rem))),
                     last.eq(Mux(fire, Mux(take_f, one_v, Mux(last, last, rem == 0)),
                                 Mux(take_n, one_v, last)))]

        m.d.comb += b.ready.eq(1)
        got = b.valid
        m.d.sync += pending.eq(pending + sent - got)
        with m.If(got & (b.payload.resp != 0)):
            m.d.sync += self.error.eq(1)
        m.d.comb += [self.busy.eq(~none_left | (pending != 0) | held),
                     self.quiet.eq(none_left & (pending == 0) & ~queued & ~head & ~held)]
        return m


class _Link(wiring.Component):
    """What :class:`CreditLink` and :class:`SplitLink` share: the stream ports, ``depth``, the
    optional ``ready_copy`` and the RAM (:meth:`_ram`)."""

    def __init__(self, shape, depth: int, ready_copy: bool):
        self.shape, self.depth = shape, depth
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})
        #: with ``ready_copy``: a register copy of ``i.ready`` (both KEEP) for the producer's own
        #: state, so that its handshake there is a LUT of its own, placed by the producer (else
        #: synthesis shares the link's LUT of the handshake, placed by the link's pointers)
        self.ready_copy = Signal(name="ready_copy", init=1, attrs=KEEP) if ready_copy else None

    def _ram(self, m):
        """The RAM of ``depth + 1`` places: written every cycle at the write pointer, which moves on
        with the input's handshake; read at the read pointer, which moves on with the output's. In
        parts of :data:`LINK_PART` bits, each with its own copies of the pointers (KEEP), so that no
        pointer register addresses a wide word's every RAM cell (a 256-bit link's read pointer, its
        64 cells spread out, was a 3.8 ns route: the system top's critical path at 134.2 MHz).
        Returns (places, the input's handshake, the output's)."""
        n = self.depth + 1
        take = self.i.valid & self.i.ready
        back = self.o.valid & self.o.ready
        data_i, data_o = Value.cast(self.i.payload), Value.cast(self.o.payload)
        width = len(data_i)
        parts = [(lo, min(lo + LINK_PART, width)) for lo in range(0, width, LINK_PART)] or [(0, 0)]
        keep = KEEP if len(parts) > 1 else {}
        for i, (lo, hi) in enumerate(parts):
            w_ptr = Signal(range(n), name=f"w_ptr{i}", attrs=keep)
            r_ptr = Signal(range(n), name=f"r_ptr{i}", attrs=keep)
            mem = m.submodules[f"mem{i}" if i else "mem"] = Memory(shape=unsigned(hi - lo), depth=n, init=[])
            wr, rd = mem.write_port(), mem.read_port(domain="comb")
            m.d.comb += [wr.addr.eq(w_ptr), wr.data.eq(data_i[lo:hi]), wr.en.eq(1), rd.addr.eq(r_ptr),
                         data_o[lo:hi].eq(rd.data)]
            with m.If(take):
                m.d.sync += w_ptr.eq(Mux(w_ptr == n - 1, 0, w_ptr + 1))
            with m.If(back):
                m.d.sync += r_ptr.eq(Mux(r_ptr == n - 1, 0, r_ptr + 1))
        return n, take, back

    def _writer(self, m, count, free, take, back):
        """``count`` (places taken) stepped by ``take`` and ``back``, and ``i.ready`` from ``free``, a
        register (init 1) of ``count < depth`` (and ``ready_copy``), its two outcomes made beside the
        count, so that either handshake reaches the flag through one LUT (with the handshake in front
        of the count's adder and comparison, a consumer placed far away was the system top's critical
        path at 101.3 MHz)."""
        if self.ready_copy is not None:
            free.attrs.update(KEEP)
        free_next = back | Mux(take, count != self.depth - 1, count != self.depth)
        m.d.sync += [count.eq(_step(count, take, back)), free.eq(free_next),
                     *([self.ready_copy.eq(free_next)] if self.ready_copy is not None else [])]
        m.d.comb += self.i.ready.eq(free)


def _step(count, up, down):
    """``count + up - down`` chosen from sums made beside it (two handshakes through two adders in
    series were on the write master's and the packer's failing paths)."""
    return Mux(up, Mux(down, count, count + 1), Mux(down, count - 1, count))


class CreditLink(_Link):
    """A stream of ``shape`` (bits, or a layout) through a small FIFO of distributed (LUT) RAM: full
    rate, :data:`fairyhw.hw.timing.LINK_LATENCY` (a cycle) of latency, like a register slice (a skid
    buffer), but with no wide enable anywhere.

    The RAM has ``depth + 1`` places and is written every cycle at the write pointer, which moves on
    only when a word is taken, so at most ``depth`` words are held and the place written is always free:
    its write enable is constant. The input is taken while fewer than ``depth`` words are held
    (``i.ready`` is a register); the output is the RAM read at the read pointer. Either side's
    handshake thus reaches only the pointers and the count. (A register slice's output register holds
    its word while the consumer waits, so the consumer's ready became the enable of its whole width:
    the system top's critical path; a FIFO whose write enable is the input's handshake made that the
    enable of every RAM cell.)
    """

    def __init__(self, shape, depth: int = LINK_DEPTH, *, ready_copy: bool = False):
        with validating(self):
            if depth < 2:
                raise ValueError(f"a credit link needs two places at least for full rate, not {depth}")
        super().__init__(shape, depth, ready_copy)
        #: a register: two places free or more (a producer that offers a word a cycle after deciding
        #: to, from a register, decides while this holds)
        self.room2 = Signal(init=1)

    def elaborate(self, platform):
        m = Module()
        n, take, back = self._ram(m)
        count = Signal(range(n))
        free, held = Signal(init=1), Signal()              # count < depth, count != 0
        # (each flag's two outcomes from registers: the handshakes reach it through one LUT)
        self._writer(m, count, free, take, back)
        m.d.sync += [self.room2.eq(Mux(take, Mux(back, count < self.depth - 1, count < self.depth - 2),
                                       Mux(back, count < self.depth, count < self.depth - 1))),
                     held.eq(take | Mux(back, count > 1, count != 0))]
        m.d.comb += self.o.valid.eq(held)
        return m


class SplitLink(_Link):
    """A stream of ``shape`` through a small FIFO of distributed RAM whose two sides share no logic,
    for a boundary between blocks that the placer may put far apart: full rate,
    :data:`fairyhw.hw.timing.SPLIT_LINK_LATENCY` cycles of latency.

    The writer's side has its pointer, its count of the places taken (as it knows them) and
    ``i.ready``, a register; the reader's side has its pointer, its count of the words held and
    ``o.valid``, a register. Each side tells the other of a word moved through a one-bit register
    (``put``: a word taken; ``ret``: a word given out), so a handshake on either side reaches only
    that side's registers, and a path between the sides is a register, a route and a LUT at most.
    (With one count for both sides, as in :class:`CreditLink`, the count sits between the two
    handshakes: in the system top, the engine sequencer's ``chunk_last`` went through its weight
    link's logic and back, 7.1-7.4 ns, in two of four placements.) A word is offered two cycles
    after it is taken, and its place is known free to the writer two cycles after it is given out:
    :data:`fairyhw.hw.timing.SPLIT_LINK_DEPTH` words keep full rate. The RAM has ``depth + 1``
    places and is written every cycle at the write pointer, as in :class:`CreditLink`.
    """

    def __init__(self, shape, depth: int = SPLIT_LINK_DEPTH, *, ready_copy: bool = False):
        with validating(self):
            if depth < SPLIT_LINK_DEPTH:
                raise ValueError(f"a split link needs {SPLIT_LINK_DEPTH} places at least for full rate, "
                                 f"not {depth}")
        super().__init__(shape, depth, ready_copy)

    def elaborate(self, platform):
        m = Module()
        n, take, back = self._ram(m)
        put, ret = Signal(), Signal()                      # a word taken / given out, a cycle before
        m.d.sync += [put.eq(take), ret.eq(back)]
        # the writer's side: places taken as it knows them (a place comes back with `ret`)
        used = Signal(range(n))
        free = Signal(init=1)                              # used < depth
        self._writer(m, used, free, take, ret)
        # the reader's side: words held (a word arrives with `put`)
        held_n = Signal(range(n))
        held = Signal()                                    # held_n != 0
        m.d.sync += [held_n.eq(_step(held_n, put, back)), held.eq(put | Mux(back, held_n > 1, held_n != 0))]
        m.d.comb += self.o.valid.eq(held)
        return m


class BlockFIFO(wiring.Component):
    """A stream FIFO of ``depth`` words of ``width`` bits meant for block RAM, built for the clock: the
    block RAM's read data go straight into a register with no enable (which the place-and-route flow
    folds into the RAM as its output register; Yosys maps a shallow one, such as the system top's
    result FIFO, to distributed RAM, the register then a plain one), and from there into a
    :class:`CreditLink` of ``QUEUE`` words (distributed RAM written every cycle), a word read from the
    block RAM only while a place is free for it. Every handshake and RAM control comes from registers.

    A word taken at cycle ``t`` is offered at ``t + BLOCK_FIFO_LATENCY`` at the earliest
    (:data:`fairyhw.hw.timing.BLOCK_FIFO_LATENCY`); full rate in and out. ``i.ready``: fewer than
    ``depth`` words in the block RAM; with ``credited``, always (the producer counts the room
    itself and never offers a word beyond it). ``empty`` (a register, not a stream member): no word held
    anywhere in the FIFO. (A FIFO whose block RAM output goes through its output mux put the
    RAM's 5.6 ns clock-to-out in front of the consumer's logic: the system top's critical path.)
    """

    #: places in the output queue: a word taken from it frees its place for a read 5 cycles later
    #: (the take registered, the read decision, the block RAM's read, its output register, the queue)
    QUEUE = 5

    def __init__(self, width: int, depth: int, *, credited: bool = False):
        with validating(self):
            if depth < BLOCK_FIFO_MIN_DEPTH:
                raise ValueError(f"a block FIFO holds {BLOCK_FIFO_MIN_DEPTH} words at least, not {depth}")
        self.width, self.depth, self.credited = width, depth, credited
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})
        self.empty = Signal(init=1)

    def elaborate(self, platform):
        m = Module()
        D, Q = self.depth, self.QUEUE
        # the block RAM never reads a word in the cycle it is written (a word is read a cycle after
        # its write at the earliest; a read of the place being written is of an empty FIFO, and
        # unused): `no_rw_check` spares the read-old-data emulation that Yosys would otherwise put
        # between the RAM and its output register (on ECP5 a mux that kept the register out of the
        # RAM: its 5.8 ns clock-to-out was the system top's critical path at 115 MHz)
        mem = m.submodules.mem = Memory(shape=unsigned(self.width), depth=D, init=[],
                                        attrs={"no_rw_check": 1})
        wr, rd = mem.write_port(), mem.read_port(domain="sync")
        w_ptr, r_ptr = Signal(range(D)), Signal(range(D))
        # level == stored + wrote at every cycle; each is counted in its own register so that `room`
        # and the read decision stay a comparison of one counter's next value (no adder before them)
        level = Signal(range(D + 1))                  # words taken and not yet read
        stored = Signal(range(D + 1))                 # words written and not yet read
        room = Signal(init=1)                         # level != D (a register)
        held = Signal(range(Q + 1))                   # the queue's words and those on their way to it
        # `credited`: the producer offers a word only where it has counted room for it (a read
        # master asks for no more than the FIFO holds), so every word offered is taken and `i.ready`
        # is constant (from `room`, it was the read master's critical path alone at 170.0 MHz)
        take = self.i.valid if self.credited else self.i.valid & room
        # a word is read from the block RAM while one is stored and the queue has a place for it
        # (stored != 0 and held != Q): a register decided from their next values (as a LUT of two
        # such registers it was placed by the read pointer and the block RAM, and its route into the
        # level's adder was the system top's ECP5 critical path: 124.5 MHz, a 3.8 ns route)
        issue = Signal()
        # the word taken is written a cycle later, from registers (the input's handshake as the
        # write enable of the block RAMs, placed along their row, was the system top's critical
        # path at 108.1 MHz: `room` -> the handshake -> the level, two 3 ns routes)
        wrote = Signal()
        w_data = Signal(self.width, reset_less=True)
        m.d.sync += [wrote.eq(take), w_data.eq(self.i.payload)]
        some_next = ~_next_is(stored, wrote, issue, 0)
        m.d.sync += [level.eq(level + take - issue), room.eq(~_next_is(level, take, issue, D)),
                     stored.eq(stored + wrote - issue)]
        with m.If(wrote):
            m.d.sync += w_ptr.eq(Mux(w_ptr == D - 1, 0, w_ptr + 1))
        with m.If(issue):
            m.d.sync += r_ptr.eq(Mux(r_ptr == D - 1, 0, r_ptr + 1))
        m.d.comb += [wr.addr.eq(w_ptr), wr.data.eq(w_data), wr.en.eq(wrote), rd.addr.eq(r_ptr),
                     self.i.ready.eq(1 if self.credited else room)]
        # the read pipeline: the RAM's data (its address registered), then a register with no enable
        out_reg = Signal(self.width, reset_less=True)
        v1, v2 = Signal(), Signal()
        m.d.sync += [out_reg.eq(rd.data), v1.eq(issue), v2.eq(v1)]
        # the queue: a credit link, never full (a word is read only with a place free for it)
        # a word taken from the queue frees its place a cycle later (`popped`, a register: the
        # consumer's handshake, and a read master's `abort` in it, in front of the read decision
        # was the system top's critical path at 138.2 MHz, a 3.9 ns route from the queue)
        queue = m.submodules.queue = CreditLink(self.width, Q)
        popped = Signal()
        m.d.sync += popped.eq(self.o.valid & self.o.ready)
        credit_next = popped | (held + issue != Q)
        m.d.sync += [held.eq(held + issue - popped), issue.eq(some_next & credit_next),
                     self.empty.eq(_next_is(level, take, issue, 0) & _next_is(held, issue, popped, 0))]
        m.d.comb += [queue.i.valid.eq(v2), queue.i.payload.eq(out_reg)]
        wiring.connect(m, queue.o, wiring.flipped(self.o))
        return m


def _next_is(count, up, down, value: int):
    """Whether ``count + up - down`` (``up``, ``down`` one bit each) equals ``value``, from comparisons
    of ``count`` itself: no adder in front of the comparison (a FIFO's level through its adder into
    its flags was on the system top's critical path)."""
    eq = lambda v: count == v if 0 <= v < 2 ** len(count) else Const(0)
    return Mux(up & ~down, eq(value - 1), Mux(down & ~up, eq(value + 1), eq(value)))
