"""The AXI4-Lite register file in Verilator, driven by cocotbext-axi (see axi_regs_tb.py)."""

from amaranth.hdl import Shape
from amaranth.lib.wiring import In

from fairyhw.hw.axi import RegisterFile
from test_engine import build_component, run_testcase

#: The standard AXI4-Lite port names and the register file's packed channel payloads.
WRAPPER = """module top(
  input clk, input rst,
  input [7:0] s_axil_awaddr, input [2:0] s_axil_awprot, input s_axil_awvalid, output s_axil_awready,
  input [31:0] s_axil_wdata, input [3:0] s_axil_wstrb, input s_axil_wvalid, output s_axil_wready,
  output [1:0] s_axil_bresp, output s_axil_bvalid, input s_axil_bready,
  input [7:0] s_axil_araddr, input [2:0] s_axil_arprot, input s_axil_arvalid, output s_axil_arready,
  output [31:0] s_axil_rdata, output [1:0] s_axil_rresp, output s_axil_rvalid, input s_axil_rready,
  {hw_ports});
  inner u(.clk(clk), .rst(rst),
    .bus__aw__payload({{s_axil_awprot, s_axil_awaddr}}), .bus__aw__valid(s_axil_awvalid), .bus__aw__ready(s_axil_awready),
    .bus__w__payload({{s_axil_wstrb, s_axil_wdata}}), .bus__w__valid(s_axil_wvalid), .bus__w__ready(s_axil_wready),
    .bus__b__payload(s_axil_bresp), .bus__b__valid(s_axil_bvalid), .bus__b__ready(s_axil_bready),
    .bus__ar__payload({{s_axil_arprot, s_axil_araddr}}), .bus__ar__valid(s_axil_arvalid), .bus__ar__ready(s_axil_arready),
    .bus__r__payload({{s_axil_rresp, s_axil_rdata}}), .bus__r__valid(s_axil_rvalid), .bus__r__ready(s_axil_rready),
    {hw_conns});
endmodule
"""


def test_registers_with_a_third_party_manager():
    regs = RegisterFile()
    hw = [(n, "input" if m.flow == In else "output", Shape.cast(m.shape).width)
          for n, m in regs.signature.members.items() if n != "bus"]
    ports = ", ".join(f"{d} [{w - 1}:0] {n}" for n, d, w in hw)
    conns = ", ".join(f".{n}({n})" for n, _, _ in hw)
    runner, bdir = build_component("axi_regs", regs, WRAPPER.format(hw_ports=ports, hw_conns=conns))
    run_testcase(runner, bdir, "registers_under_random_pauses", test_module="axi_regs_tb")
