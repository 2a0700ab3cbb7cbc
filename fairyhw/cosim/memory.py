"""A memory for the system top in Verilog: the data plane of a whole-model co-simulation runs in the
simulator, with no Python on any clock edge.

:func:`memory_verilog` writes an AXI4 subordinate with one read port per read master of the system
top and one write port, over one word array. Its timing is that of the cocotb memory model that
validated the cycle model's memory side (``sim/axi_memory.py``), which :class:`~fairyhw.hw.timing`
follows burst by burst:

- read port: a burst is accepted on ``ar`` while fewer than ``outstanding`` are in flight; its first
  beat may go out ``latency`` cycles after acceptance; beats leave in order, at most one a cycle,
  each spending a word's bytes of a budget that grows by ``bytes_per_cycle`` a cycle (at most two
  words' worth saved), counted exactly as a fraction; a beat past the memory's end answers DECERR;
- write port: ``awready`` and ``wready`` always high, each burst's response on ``b`` the cycle after
  its last beat, in order, held until taken; byte strobes honoured.

:func:`bench_verilog` puts the memory and the system top's wrapper in one top module whose ports are
the reset, the AXI4-Lite registers and the interrupt: what the host drives. The clock toggles inside
the bench (Verilator's ``--timing``), so the simulator runs its cycles with no call into Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

__all__ = ["MemoryTiming", "memory_verilog", "bench_verilog", "MEMORY_MODULE", "BENCH_MODULE", "CLOCK_NS"]

MEMORY_MODULE = "fairyhw_sim_memory"
#: The bench's clock period (ns of simulated time; only cycles are reported).
CLOCK_NS = 10
BENCH_MODULE = "fairyhw_bench"


@dataclass(frozen=True)
class MemoryTiming:
    """The memory's bandwidth (bytes a cycle, each read port), read latency (cycles from a burst's
    acceptance to its first beat) and the bursts it keeps in flight per read port."""
    bytes_per_cycle: float = 32.0
    latency: int = 30
    outstanding: int = 8

    def __post_init__(self):
        from .. import FairyError
        if not (isinstance(self.bytes_per_cycle, (int, float)) and 0 < self.bytes_per_cycle <= 1024):
            raise FairyError(f"memory bandwidth must be from 0 to 1024 bytes a cycle, not "
                             f"{self.bytes_per_cycle!r}")
        if not (isinstance(self.latency, int) and 0 <= self.latency <= 100_000):
            raise FairyError(f"memory latency must be an integer from 0 to 100000 cycles, not "
                             f"{self.latency!r}")
        if not (isinstance(self.outstanding, int) and 1 <= self.outstanding <= 64):
            raise FairyError(f"outstanding bursts must be an integer from 1 to 64, not {self.outstanding!r}")

    @property
    def rate(self) -> Fraction:
        """The bandwidth as an exact fraction of bytes a cycle."""
        return Fraction(self.bytes_per_cycle).limit_denominator(1 << 16)


def _read_port(i: int, W: int, AW: int, words: int, timing: MemoryTiming) -> str:
    rate = timing.rate
    num, den = rate.numerator, rate.denominator
    cost, cap = W * den, 2 * W * den
    n_out = timing.outstanding
    qb = max(1, (n_out - 1).bit_length())
    shift = W.bit_length() - 1
    end = words * W
    p = f"r{i}_"
    return f"""
  // read port {i}
  reg [63:0] {p}qt [0:{n_out - 1}];
  reg [{AW - 1}:0] {p}qa [0:{n_out - 1}];
  reg [8:0] {p}qn [0:{n_out - 1}];
  reg [{qb - 1}:0] {p}head, {p}tail;
  reg [7:0] {p}cnt;
  reg [63:0] {p}budget;
  always @(posedge clk) begin : port{i}
    reg [63:0] c;
    if (rst) begin
      {p}head = 0; {p}tail = 0; {p}cnt = 0; {p}budget = 0;
      {p}arready <= 0; {p}rvalid <= 0; {p}rlast <= 0; {p}rresp <= 0; {p}rdata <= 0;
    end else begin
      c = cycle + 1;
      if ({p}arvalid && {p}arready) begin
        {p}qt[{p}tail] = c + {timing.latency};
        {p}qa[{p}tail] = {p}araddr;
        {p}qn[{p}tail] = {{1'b0, {p}arlen}} + 9'd1;
        {p}tail = {p}tail + 1'b1;
        {p}cnt = {p}cnt + 1;
      end
      if ({p}rvalid && {p}rready) begin
        {p}budget = {p}budget - {cost};
        {p}qa[{p}head] = {p}qa[{p}head] + {W};
        {p}qn[{p}head] = {p}qn[{p}head] - 1;
        if ({p}qn[{p}head] == 0) begin
          {p}head = {p}head + 1'b1;
          {p}cnt = {p}cnt - 1;
        end
      end
      {p}budget = ({p}budget + {num} > {cap}) ? {cap} : {p}budget + {num};
      {p}arready <= {p}cnt < {n_out};
      if ({p}cnt != 0 && {p}qt[{p}head] <= c && {p}budget >= {cost}) begin
        {p}rvalid <= 1;
        {p}rlast <= {p}qn[{p}head] == 1;
        if ({p}qa[{p}head] + {W} <= {end}) begin
          {p}rdata <= mem[{p}qa[{p}head] >> {shift}];
          {p}rresp <= 0;
        end else begin
          {p}rdata <= 0;
          {p}rresp <= 3;
        end
      end else
        {p}rvalid <= 0;
    end
  end
"""


def memory_verilog(read_ports: int, *, data_width: int, addr_width: int, words: int,
                   timing: MemoryTiming, outstanding_writes: int = 64) -> str:
    """The memory module :data:`MEMORY_MODULE` (see the module): ``read_ports`` read ports
    ``r<i>_*``, one write port ``w_*``, ``words`` words of ``data_width`` bits (``mem``)."""
    W, AW = data_width // 8, addr_width
    shift = W.bit_length() - 1
    ports = ["input clk", "input rst"]
    for i in range(read_ports):
        p = f"r{i}_"
        ports += [f"input {p}arvalid", f"output reg {p}arready", f"input [{AW - 1}:0] {p}araddr",
                  f"input [7:0] {p}arlen", f"output reg {p}rvalid", f"input {p}rready",
                  f"output reg [{data_width - 1}:0] {p}rdata", f"output reg [1:0] {p}rresp",
                  f"output reg {p}rlast"]
    ports += ["input w_awvalid", "output w_awready", f"input [{AW - 1}:0] w_awaddr", "input w_wvalid",
              "output w_wready", f"input [{data_width - 1}:0] w_wdata", f"input [{W - 1}:0] w_wstrb",
              "input w_wlast", "output w_bvalid", "input w_bready", "output [1:0] w_bresp"]
    nw = outstanding_writes
    wb = max(1, (nw - 1).bit_length())
    body = [f"module {MEMORY_MODULE} (", ",\n".join(f"  {p}" for p in ports), ");",
            f"  reg [{data_width - 1}:0] mem [0:{words - 1}] /*verilator public_flat_rw*/;   // the host's view",
            "  reg [63:0] cycle;",
            "  always @(posedge clk) cycle <= rst ? 64'd0 : cycle + 64'd1;"]
    body += [_read_port(i, W, AW, words, timing) for i in range(read_ports)]
    body.append(f"""
  // write port
  reg [{AW - 1}:0] wq [0:{nw - 1}];
  reg [{wb - 1}:0] whead, wtail;
  reg [7:0] wresp;
  assign w_awready = 1'b1;
  assign w_wready = 1'b1;
  assign w_bvalid = wresp != 0;
  assign w_bresp = 2'd0;
  always @(posedge clk) begin : wport
    reg [{AW - 1}:0] a;
    integer b;
    if (rst) begin
      whead = 0; wtail = 0; wresp = 0;
    end else begin
      if (w_bvalid && w_bready) wresp = wresp - 1;
      if (w_awvalid) begin
        wq[wtail] = w_awaddr;
        wtail = wtail + 1'b1;
      end
      if (w_wvalid) begin
        a = wq[whead];
        if (a + {W} <= {words * W}) begin
          if (&w_wstrb)
            mem[a >> {shift}] = w_wdata;
          else
            for (b = 0; b < {W}; b = b + 1)
              if (w_wstrb[b]) mem[a >> {shift}][8 * b +: 8] = w_wdata[8 * b +: 8];
        end
        wq[whead] = a + {W};
        if (w_wlast) begin
          whead = whead + 1'b1;
          wresp = wresp + 1;
        end
      end
    end
  end
endmodule
""")
    return "\n".join(body)


def bench_verilog(component, system_module: str) -> str:
    """The top module :data:`BENCH_MODULE`: ``system_module`` (the wrapper of ``component``, a
    :class:`~fairyhw.hw.system.SystemTop`, from :func:`~fairyhw.hw.system.wrapper_verilog`) with its
    masters on :data:`MEMORY_MODULE` (read ports in the order ``m_ctrl``, ``m_wgt0``, ...)."""
    from ..hw.system import wrapper_ports
    ports = wrapper_ports(component)
    reads = ["ctrl"] + [f"wgt{p}" for p in range(component.config.weight_ports)]
    outer = [p for p in ports if p["name"] in ("aresetn", "irq") or p["name"].startswith("s_axil_")]
    inner = [p for p in ports if p not in outer and p["name"] != "aclk"]
    rng = lambda w: f"[{w - 1}:0] " if w > 1 else ""
    lines = [f"module {BENCH_MODULE} ("]
    lines.append(",\n".join(f"  {'input' if p['direction'] == 'in' else 'output'} {rng(p['width'])}{p['name']}"
                            for p in outer))
    lines.append(");")
    # the clock toggles inside the simulator (Verilator --timing): no callback into cocotb per edge
    lines.append("  reg aclk = 1'b0;")
    lines.append(f"  always #{CLOCK_NS // 2} aclk = ~aclk;")
    for p in inner:
        lines.append(f"  wire {rng(p['width'])}{p['name']};")
        if p["name"].endswith("_rid") or p["name"].endswith("_bid"):
            lines.append(f"  assign {p['name']} = 0;")
    lines.append(f"  {system_module} system (")
    lines.append(",\n".join(f"    .{p['name']}({p['name']})" for p in ports))
    lines.append("  );")
    conns = ["    .clk(aclk)", "    .rst(~aresetn)"]
    for i, bus in enumerate(reads):
        m = f"m_axi_{bus}_"
        for sig in ("arvalid", "arready", "araddr", "arlen", "rvalid", "rready", "rdata", "rresp", "rlast"):
            conns.append(f"    .r{i}_{sig}({m}{sig})")
    m = "m_axi_res_"
    for sig in ("awvalid", "awready", "awaddr", "wvalid", "wready", "wdata", "wstrb", "wlast", "bvalid",
                "bready", "bresp"):
        conns.append(f"    .w_{sig}({m}{sig})")
    lines.append(f"  {MEMORY_MODULE} memory (")
    lines.append(",\n".join(conns))
    lines.append("  );")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"
