"""The cycle and energy model, checked by hand."""

import json
import subprocess
import sys

import pytest

from fairyhw.hw.timing import engine_cycles, latency
from fairyhw.model.llama import LLAMA2_7B, weight_bytes_per_token
from fairyhw.perf import (MEMORY_PRESETS, HardwareConfig, MacArray, decode_ops, prefill_ops, project,
                          roofline_tokens_per_s, smallest_saturating, workload)


def test_bytes_per_decoded_token_at_2_bits():
    ops = decode_ops(context=0)
    weights = sum(o.weight_bytes for o in ops if o.kind == "linear")
    assert weights == weight_bytes_per_token(LLAMA2_7B, 2)
    assert round(weights / 1e9, 3) == 1.652
    fp16_head = decode_ops(context=0, lm_head="fp16")
    assert round(sum(o.weight_bytes for o in fp16_head if o.name != "embedding") / 1e9, 3) == 1.881


def test_fp16_h100_roofline():
    # (6,476,005,376 + 131,072,000) x 2 B = 13.21 GB of fp16 weights per token at 3.35 TB/s: 253.5 tok/s
    tps = MEMORY_PRESETS["h100-hbm3"].bandwidth / weight_bytes_per_token(LLAMA2_7B, 16)
    assert round(tps, 1) == 253.5
    # the 2-bit H100 roofline: 2028 tokens/s on weights alone; the model's roofline also moves
    # the new token's K and V (0.5 MB) and its embedding row, 2027.5
    assert round(3.35e12 / weight_bytes_per_token(LLAMA2_7B, 2)) == 2028
    assert round(roofline_tokens_per_s(decode_ops(context=0), 3.35e12), 1) == 2027.5


def test_ddr4_64_lanes_is_compute_bound_by_arithmetic():
    # 64 lanes x 2 bits x 250 MHz = 4 GB/s of codes consumed < 19.2 GB/s available: compute-bound
    hw = HardwareConfig.of(lanes=64, lane_style="output", clock=250e6,
                           memory=MEMORY_PRESETS["ddr4-2400-x64"])
    assert 64 * 2 / 8 * 250e6 < hw.memory.bandwidth
    pr = project(decode_ops(context=0), hw)
    assert pr.bound == "compute (MAC array)"
    cycles = sum(engine_cycles(s.k, s.rows, lanes=64, stages=2, matrices=2) * s.count
                 for s in decode_ops(context=0) if s.kind == "linear")
    linear_s = sum(r["seconds"] for r in pr.ops if r["name"].endswith("proj") or r["name"] == "lm_head")
    assert linear_s == pytest.approx(cycles / 250e6, rel=1e-12)
    # a 16-bit-wide memory instead makes the same array memory-bound
    slow = HardwareConfig.of(lanes=64, lane_style="output", clock=250e6,
                             memory=MEMORY_PRESETS["ddr4-2400-x64"].__class__("slow", 1e9, 31.0, 1.0, "test"))
    assert project(decode_ops(context=0), slow).bound.startswith("memory")


def test_linear_cycles_are_the_generators():
    hw = HardwareConfig.of(lanes=64, lane_style="output")
    assert MacArray(hw).cycles(2048, 2048) == engine_cycles(2048, 2048, lanes=64, stages=2, matrices=2)
    arr = HardwareConfig.of(rows=4, cols=16, lanes=64)
    assert MacArray(arr).cycles(2048, 2048) == latency(arr.engine, 2048, 2048)


def test_ifairy_projection_counts_one_matrix_per_stage():
    """A Fairy±i engine streams W only: half the passes, half the cycles and half the weight bytes of
    Fairy2i at the same stages (the DSE once projected it at twice its real cycles)."""
    f2 = HardwareConfig.of(lanes=64, lane_style="output", stages=1)
    fi = HardwareConfig.of(lanes=64, lane_style="output", stages=1, mode="ifairy")
    c2, ci = MacArray(f2).cycles(2048, 2048), MacArray(fi).cycles(2048, 2048)
    assert ci == engine_cycles(2048, 2048, lanes=64, stages=1, matrices=1)
    assert 0.49 < ci / c2 < 0.51
    w2 = sum(o.weight_bytes for o in workload(f2) if o.kind == "linear")
    wi = sum(o.weight_bytes for o in workload(fi) if o.kind == "linear")
    assert wi * 2 == w2


def test_smallest_saturating_array():
    """At 300 MHz the U280's 460 GB/s needs about 4 x 460e9 / 300e6 = 6133 MACs/cycle: the smallest
    128-column array whose every linear layer is memory-bound has 50 rows (6400); at 49 the 4096 x
    4096 layers' compute time is 0.02% over their weight stream (the array's pipeline and result
    path add a few cycles a layer)."""
    hw = smallest_saturating(300e6, MEMORY_PRESETS["u280-hbm2"])
    assert (hw.engine.rows, hw.engine.cols) == (50, 128)
    pr = project(workload(hw), hw)
    assert pr.bound.startswith("memory") and pr.roofline_fraction > 0.98
    smaller = HardwareConfig.of(rows=49, cols=128, lanes=49 * 128, clock=300e6)
    assert project(workload(smaller), smaller).tokens_per_s < pr.tokens_per_s


def test_energy_split_and_context_growth():
    hw = HardwareConfig.of(lanes=2048, lane_style="output", clock=300e6)
    p0 = project(decode_ops(context=0), hw)
    p2k = project(decode_ops(context=2048), hw)
    assert set(p0.energy_split) == {"weights", "kv_cache", "buffers", "macs", "vector", "static"}
    # HBM2 at 3.97 pJ/bit: 1.652 GB of weights is 52.5 mJ
    assert p0.energy_split["weights"] == pytest.approx(1.651769344e9 * 8 * 3.97e-12, rel=1e-3)
    assert p2k.energy_split["kv_cache"] > 100 * p0.energy_split["kv_cache"]
    assert p2k.tokens_per_s < p0.tokens_per_s
    assert 0 < p0.utilization <= 1 and p0.tokens_per_j == pytest.approx(1 / p0.joules)


def test_prefill_counts_prompt_tokens():
    hw = HardwareConfig.of(lanes=256, clock=250e6)
    pr = project(prefill_ops(prompt=16), hw, tokens=16)
    dec = project(decode_ops(context=0), hw)
    assert pr.tokens == 16 and pr.seconds > 10 * dec.seconds


def perf(*args):
    return subprocess.run([sys.executable, "-m", "fairyhw", "perf", *args], capture_output=True, text=True)


def test_cli_table_and_json():
    r = perf("--model", "llama2-7b", "--lanes", "64", "--clock", "250e6", "--memory", "u280-hbm2",
             "--context", "2048")
    assert r.returncode == 0 and "tokens/s" in r.stdout and "attention" in r.stdout
    j = json.loads(perf("--lanes", "64", "--json").stdout)
    assert j["hardware"]["lanes"] == 64 and j["tokens_per_s"] > 0


@pytest.mark.parametrize("args, msg", [
    (["--lanes", "0"], "argument --lanes: lanes must be from 1 to 65536, not 0"),
    (["--clock", "-1"], "argument --clock: clock must be from 1000 to 1e+10 Hz, not -1"),
    (["--clock", "nan"], "argument --clock: clock must be from 1000 to 1e+10 Hz, not nan"),
    (["--memory", "sram"], "argument --memory: invalid choice: 'sram'"),
    (["--context", "-5"], "argument --context: context must be from 0 to 1048576, not -5"),
    (["--lanes", "10", "--rows", "4"], "error: Lane count 10 is not a multiple of the rows 4"),
    (["--lane-style", "output", "--lanes", "8192"],
     "error: Output lanes go up to 4096, not 8192: use the array style for more"),
])
def test_cli_bad_options(args, msg):
    r = perf(*args)
    assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
