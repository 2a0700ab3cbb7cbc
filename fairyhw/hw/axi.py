"""AXI4-Lite: the bus signature and the control register file of the system top.

The register map is written once, here (:data:`REGISTERS`); the RTL (:class:`RegisterFile`), the C
header (:func:`c_header`) and the manifest's record (:func:`register_map`) are all made from it.

Protocol (AXI4-Lite, 32-bit data): the write address and write data channels are accepted
independently, one of each at a time; the write happens when both are held, and its response is held
on ``b`` until taken (no new write is accepted meanwhile). A read address is answered on ``r`` the
cycle after it is taken, held until taken. An address outside the map answers ``SLVERR`` (reads give
0, writes change nothing). Byte strobes apply to read-write fields; for write-one-to-clear and pulse
fields a bit counts only if its byte is strobed. No ready waits on a valid of another channel, and
no valid waits on a ready.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import reduce

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Field", "Register", "REGISTERS", "MAGIC", "OKAY", "SLVERR", "axil_signature",
           "RegisterFile", "c_header", "register_map", "register_table"]

#: The ID register's value: "FHW1" in ASCII.
MAGIC = 0x46485731
#: AXI responses.
OKAY, SLVERR = 0, 2
#: Field access kinds: a constant (:data:`MAGIC`), read-only (driven by the hardware), read-write
#: (held for the hardware), write-one-to-clear (set by a hardware pulse), pulse (a write of 1 strobes
#: the hardware for a cycle; reads 0).
ACCESS = ("const", "ro", "rw", "w1c", "pulse")


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    access: str
    doc: str


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    fields: tuple
    doc: str


def _reg(name, offset, doc, *fields):
    fields = tuple(Field(*f) for f in fields)
    assert all(f.access in ACCESS for f in fields), fields
    return Register(name, offset, fields, doc)


#: The register map (byte offsets, 32-bit registers).
REGISTERS = (
    _reg("id", 0x00, "identifies the core", ("magic", 0, 32, "const", f"0x{MAGIC:08X} (\"FHW1\")")),
    _reg("ctrl", 0x04, "control",
         ("start", 0, 1, "pulse", "run the descriptor list from its first layer"),
         ("soft_reset", 1, 1, "pulse", "abandon the run and return to idle"),
         ("irq_enable", 2, 1, "rw", "raise the interrupt while done or error is set")),
    _reg("status", 0x08, "status",
         ("busy", 0, 1, "ro", "a run is in progress"),
         ("done", 1, 1, "w1c", "the last run finished"),
         ("error", 2, 1, "w1c", "the last run stopped on an error"),
         ("error_code", 8, 8, "ro", "why (0: none)")),
    _reg("desc_addr_lo", 0x0C, "descriptor list address, low word", ("value", 0, 32, "rw", "")),
    _reg("desc_addr_hi", 0x10, "descriptor list address, high word", ("value", 0, 32, "rw", "")),
    _reg("desc_count", 0x14, "layers in the descriptor list", ("value", 0, 32, "rw", "")),
    _reg("layer", 0x18, "the layer running (its index in the list)", ("value", 0, 32, "ro", "")),
    _reg("cycles_lo", 0x1C, "cycles of the last run, low word", ("value", 0, 32, "ro", "")),
    _reg("cycles_hi", 0x20, "cycles of the last run, high word", ("value", 0, 32, "ro", "")),
    _reg("stall_lo", 0x24, "cycles the array waited on memory, low word", ("value", 0, 32, "ro", "")),
    _reg("stall_hi", 0x28, "cycles the array waited on memory, high word", ("value", 0, 32, "ro", "")),
    _reg("results", 0x2C, "result beats written in the last run", ("value", 0, 32, "ro", "")),
)


def _port(reg, field):
    return reg.name if len(reg.fields) == 1 and field.name == "value" else f"{reg.name}_{field.name}"


def axil_signature(addr_width: int) -> wiring.Signature:
    """An AXI4-Lite bus from the manager's side (32-bit data): ``aw``, ``w``, ``ar`` out, ``b``,
    ``r`` in, each a valid/ready stream."""
    return wiring.Signature({
        "aw": Out(stream.Signature(data.StructLayout({"addr": addr_width, "prot": 3}))),
        "w": Out(stream.Signature(data.StructLayout({"data": 32, "strb": 4}))),
        "b": In(stream.Signature(data.StructLayout({"resp": 2}))),
        "ar": Out(stream.Signature(data.StructLayout({"addr": addr_width, "prot": 3}))),
        "r": In(stream.Signature(data.StructLayout({"data": 32, "resp": 2}))),
    })


class RegisterFile(wiring.Component):
    """The AXI4-Lite subordinate of :data:`REGISTERS`.

    Ports: ``bus`` (AXI4-Lite, ``addr_width`` bits of byte address), ``irq``, and per field (named
    ``<register>_<field>``, or the register's name for a single ``value`` field): ``ro`` an input;
    ``rw`` an output holding the value written; ``w1c`` an input ``..._set`` (a pulse sets it) and an
    output of its value; ``pulse`` an output high for one cycle after a write of 1.
    """

    def __init__(self, addr_width: int = 8):
        self._aw = addr_width
        members = {"bus": In(axil_signature(addr_width)), "irq": Out(1)}
        for reg in REGISTERS:
            for f in reg.fields:
                name = _port(reg, f)
                if f.access == "const":
                    continue
                if f.access == "ro":
                    members[name] = In(f.width)
                elif f.access == "w1c":
                    members[name + "_set"] = In(1)
                    members[name] = Out(f.width)
                else:
                    members[name] = Out(f.width)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        held = {}                                   # rw and w1c fields: their registers
        for reg in REGISTERS:
            for f in reg.fields:
                if f.access == "const":
                    continue
                port = getattr(self, _port(reg, f))
                if f.access in ("rw", "w1c"):
                    held[(reg.name, f.name)] = r = Signal(f.width, name=f"reg_{_port(reg, f)}")
                    m.d.comb += port.eq(r)
                elif f.access == "pulse":
                    m.d.sync += port.eq(0)
        # writes: address and data held until both are there, then the response held until taken
        aw_full, w_full, b_valid = Signal(), Signal(), Signal()
        b_pend = Signal()                           # the write lands this cycle, its response next
        w_data, w_strb = Signal(32), Signal(4)
        b_resp = Signal(2)
        # the readies are registers, each set from the next values of the flags it is made of (as a
        # LUT of the flags, `wready` and its handshake were two 3.2 ns routes in front of the write
        # data's enable: the system top's critical path at 119.6 MHz)
        aw_rdy = Signal(init=1)                    # == ~aw_full & ~b_valid
        w_rdy = Signal(init=1)                     # == ~w_full & ~b_valid & ~b_pend
        m.d.comb += [bus.aw.ready.eq(aw_rdy), bus.w.ready.eq(w_rdy),
                     bus.b.valid.eq(b_valid), bus.b.payload.resp.eq(b_resp)]
        # the write address decoded as it is taken, one register a map entry (`wsel`), as for reads
        # (decoded behind the write's handshake, in front of the registers' enables, it was on the
        # system top's failing paths)
        wsel = Signal(len(REGISTERS))
        with m.If(bus.aw.valid & bus.aw.ready):
            m.d.sync += [aw_full.eq(1)] + [
                wsel[i].eq(bus.aw.payload.addr[2:] == reg.offset >> 2) for i, reg in enumerate(REGISTERS)]
        with m.If(bus.w.valid & bus.w.ready):
            m.d.sync += [w_data.eq(bus.w.payload.data), w_strb.eq(bus.w.payload.strb), w_full.eq(1)]
        with m.If(bus.b.valid & bus.b.ready):
            m.d.sync += b_valid.eq(0)
        write = aw_full & w_full & ~b_valid & ~b_pend
        b_valid_n = b_pend | (b_valid & ~bus.b.ready)
        m.d.sync += [aw_rdy.eq(~Mux(write, 0, aw_full | (bus.aw.valid & aw_rdy)) & ~b_valid_n),
                     w_rdy.eq(~Mux(write, 0, w_full | (bus.w.valid & w_rdy)) & ~b_valid_n & ~write)]
        mask = Signal(32)
        m.d.comb += mask.eq(Cat(*(b.replicate(8) for b in w_strb)))       # the strobed bytes
        # the write lands a cycle after its decision, through one register a map entry (`hit`), and
        # its response follows (`b_pend`): each register's enable is a flip-flop, the data and strobes
        # wait in theirs, no new data are taken meanwhile, and a register holds the value written by
        # the time its response is given (decided and written in one cycle, the address decoding
        # and the handshakes were in front of the registers' enables: on the system top's failing paths)
        hit = Signal(len(REGISTERS))
        m.d.sync += [hit.eq(Mux(write, wsel, 0)), b_pend.eq(write)]
        with m.If(b_pend):
            m.d.sync += b_valid.eq(1)
        with m.If(write):
            m.d.sync += [aw_full.eq(0), w_full.eq(0), b_resp.eq(Mux(wsel.any(), OKAY, SLVERR))]
        for i, reg in enumerate(REGISTERS):
            with m.If(hit[i]):
                for f in reg.fields:
                    bits = slice(f.lsb, f.lsb + f.width)
                    if f.access == "rw":
                        r = held[(reg.name, f.name)]
                        m.d.sync += r.eq((r & ~mask[bits]) | (w_data[bits] & mask[bits]))
                    elif f.access == "pulse":
                        m.d.sync += getattr(self, _port(reg, f)).eq(w_data[bits] & mask[bits])
        # write-one-to-clear fields: a hardware pulse sets, a write of 1 clears (the set wins)
        for i, reg in enumerate(REGISTERS):
            for f in reg.fields:
                if f.access == "w1c":
                    r = held[(reg.name, f.name)]
                    bits = slice(f.lsb, f.lsb + f.width)
                    clear = Signal(f.width, name=f"clear_{_port(reg, f)}")
                    m.d.comb += clear.eq(Mux(hit[i], w_data[bits] & mask[bits], 0))
                    m.d.sync += r.eq((r & ~clear) | getattr(self, _port(reg, f) + "_set"))
        # reads: the value two cycles after the address, held until taken. The address is decoded as
        # it is taken, into one register a map entry (`sel`), and the read-only inputs are sampled
        # every cycle into registers of their own beside the read mux, so the mux is an AND-OR of
        # local registers (the address bits decoded through the mux, its sources the core's counters
        # over the chip, were the system top's ECP5 critical path: 133.5 MHz, 5.8 ns of routing)
        r_valid = Signal()
        r_data, r_resp = Signal(32), Signal(2)
        ar_full = Signal()
        sel = Signal(len(REGISTERS))
        r_step = Signal()                     # the read's second step (below)
        ar_rdy = Signal(init=1)               # == ~r_valid & ~ar_full & ~r_step, a register (as writes)
        m.d.sync += ar_rdy.eq(~(r_step | (r_valid & ~bus.r.ready)) & ~(bus.ar.valid & ar_rdy) & ~ar_full)
        m.d.comb += [bus.ar.ready.eq(ar_rdy), bus.r.valid.eq(r_valid),
                     bus.r.payload.data.eq(r_data),
                     bus.r.payload.resp.eq(r_resp)]
        with m.If(bus.r.valid & bus.r.ready):
            m.d.sync += r_valid.eq(0)
        with m.If(bus.ar.valid & bus.ar.ready):
            m.d.sync += [ar_full.eq(1)] + [
                sel[i].eq(bus.ar.payload.addr[2:] == reg.offset >> 2) for i, reg in enumerate(REGISTERS)]
        terms = []
        for i, reg in enumerate(REGISTERS):
            word = Signal(32, name=f"rd_{reg.name}")
            for f in reg.fields:
                if f.access == "pulse":
                    continue          # reads as 0
                if f.access == "ro":
                    v = Signal(f.width, name=f"ro_{_port(reg, f)}", reset_less=True)
                    m.d.sync += v.eq(getattr(self, _port(reg, f)))
                else:
                    v = MAGIC if f.access == "const" else held[(reg.name, f.name)]
                m.d.comb += word[f.lsb:f.lsb + f.width].eq(v)
            terms.append(Mux(sel[i], word, 0))
        # the AND-OR in two registered steps (groups of four entries, then the groups: in one step,
        # 3-4 LUT levels over a chip-wide spread of registers, it was on the system top's failing
        # paths), the value two cycles after the address
        groups = [reduce(operator.or_, terms[i:i + 4]) for i in range(0, len(terms), 4)]
        parts = [Signal(32, name=f"rd_part{g}", reset_less=True) for g in range(len(groups))]
        with m.If(ar_full):
            m.d.sync += [ar_full.eq(0), r_step.eq(1), r_resp.eq(Mux(sel.any(), OKAY, SLVERR))]
            m.d.sync += [p.eq(g) for p, g in zip(parts, groups)]
        with m.If(r_step):
            m.d.sync += [r_step.eq(0), r_valid.eq(1), r_data.eq(reduce(operator.or_, parts))]
        m.d.comb += self.irq.eq(held[("ctrl", "irq_enable")] &
                                (held[("status", "done")] | held[("status", "error")]))
        return m


def register_map() -> list:
    """The register map as JSON data (for the manifest)."""
    return [{"name": r.name, "offset": r.offset, "doc": r.doc,
             "fields": [{"name": f.name, "lsb": f.lsb, "width": f.width, "access": f.access, "doc": f.doc}
                        for f in r.fields]} for r in REGISTERS]


def c_header(prefix: str = "FAIRYHW", system=None) -> str:
    """A C header of the register map (each register's offset, each field's shift and mask), the
    descriptor's layout and the error codes, and, given a :class:`~fairyhw.hw.config.SystemConfig`,
    the core's memory parameters."""
    guard = f"{prefix}_REGS_H"
    lines = [f"/* {prefix.lower()} control registers (AXI4-Lite, 32-bit). Generated by fairyhw. */",
             f"#ifndef {guard}", f"#define {guard}", "", f"#define {prefix}_MAGIC 0x{MAGIC:08X}u", ""]
    for r in REGISTERS:
        lines.append(f"/* {r.doc} */")
        lines.append(f"#define {prefix}_{r.name.upper()} 0x{r.offset:02X}u")
        for f in r.fields:
            if len(r.fields) == 1 and f.name == "value":
                continue
            base = f"{prefix}_{r.name.upper()}_{f.name.upper()}"
            mask = ((1 << f.width) - 1) << f.lsb
            lines.append(f"#define {base}_SHIFT {f.lsb}u")
            lines.append(f"#define {base}_MASK 0x{mask:08X}u  /* {f.access}: {f.doc} */")
        lines.append("")
    lines += _system_lines(prefix, system)
    lines += [f"#endif /* {guard} */", ""]
    return "\n".join(lines)


def _system_lines(prefix: str, system) -> list:
    """The descriptor's layout, the error codes and the system's memory parameters for a C header."""
    from .config import DESCRIPTOR, DESCRIPTOR_BYTES, ERRORS, RESULT_SUM_BITS
    lines = ["/* A layer descriptor in memory (little-endian; the list is 64-byte aligned). */",
             f"#define {prefix}_DESCRIPTOR_BYTES {DESCRIPTOR_BYTES}u", "#include <stdint.h>",
             "typedef struct {"]
    lines += [f"    uint32_t {name};" for name in DESCRIPTOR]
    lines += [f"}} {prefix.lower()}_descriptor_t;", "", "/* status.error_code values */"]
    lines += [f"#define {prefix}_ERR_{i} {i}u  /* {text} */" for i, text in ERRORS.items()]
    lines += ["", f"#define {prefix}_RESULT_SUM_BITS {RESULT_SUM_BITS}u", ""]
    if system is not None:
        e = system.engine
        lines += ["/* this core */",
                  f"#define {prefix}_DATA_BYTES {system.word_bytes}u",
                  f"#define {prefix}_WEIGHT_PORTS {system.weight_ports}u",
                  f"#define {prefix}_ADDR_BITS {system.addr_width}u",
                  f"#define {prefix}_ROWS {e.rows}u", f"#define {prefix}_COLS {e.cols}u",
                  f"#define {prefix}_MAX_IN {e.max_in}u", f"#define {prefix}_MAX_OUT {e.max_out}u",
                  f"#define {prefix}_STAGES {e.stages}u", ""]
    return lines


def register_table() -> str:
    """The register map as a Markdown table (``docs/formats.md`` holds a copy, checked by a test)."""
    rows = ["| offset | register | bits | field | access | meaning |", "|---|---|---|---|---|---|"]
    for r in REGISTERS:
        for f in r.fields:
            bits = f"{f.lsb}" if f.width == 1 else f"{f.lsb + f.width - 1}:{f.lsb}"
            rows.append(f"| 0x{r.offset:02X} | `{r.name}` | {bits} | `{f.name}` | {f.access} | "
                        f"{f.doc or r.doc} |")
    return "\n".join(rows) + "\n"
