"""Co-simulation of the array style (R rows x C columns) on the generated Verilog: the cases of
``test_engine.py`` on two array shapes, one of powers of two (4 x 16) and one not (3 x 10, two rows a
result beat, two tree levels per register). Integer results are compared with ``==``; every run without
stalls takes exactly the latency function's cycles."""

from __future__ import annotations

import pytest
import torch

from fairyhw.hw.driver import ref_results
from test_engine import build, extreme_layer, llama2_q_proj, random_layer, record_cycles, run_job

SHAPES = {
    "4x16": dict(lanes=64, lane_style="array", rows=4, cols=16, max_in=2048, max_out=2048),
    "3x10": dict(lanes=30, lane_style="array", rows=3, cols=10, group=2, tree_regs=2, max_in=2048,
                 max_out=2048),
}


def design(shape, **extra):
    return build(**{**SHAPES[shape], **extra})


def _smollm2_layers(vectors, stages, names=None):
    from fairyhw.model.vectors import quantized_layer_vectors
    layers = []
    for name, (w, x) in vectors.items():
        if names and name not in names:
            continue
        _, act, codes, exp = quantized_layer_vectors(w, x, stages)
        layers.append((name, codes, act.p, act.q, exp))
    return layers


@pytest.mark.parametrize("shape, stages", [("4x16", 2), ("4x16", 1), ("3x10", 2)])
def test_array_smollm2_bit_exact(smollm2_vectors, shape, stages):
    """SmolLM2 q, k, v, o, gate, up, down of blocks 0 and 1 with real activations (the 3 x 10 shape:
    block 0's q_proj and down_proj), W2 and W1: sums == the golden integer path, cycles == latency."""
    d = design(shape, stages=stages)
    names = None if shape == "4x16" else ("model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj")
    layers = _smollm2_layers(smollm2_vectors, stages, names)
    tag = f"array{shape}_smollm2_w{stages}"
    rec = run_job(d, layers, tag=tag)
    record_cycles(d, rec, tag)
    for lrec in rec["layers"]:
        assert lrec["cycles"] == d[1].latency(lrec["k"], lrec["rows"]), lrec["name"]


def test_array_llama2_7b_q_proj_bit_exact():
    """A LLaMA-2 7B shaped q_proj (2048 x 2048 complex U and W), W2, on the 4 x 16 array."""
    d = design("4x16")
    rec = run_job(d, [llama2_q_proj()], tag="array4x16_llama2_q_proj")
    record_cycles(d, rec, "array4x16_llama2_q_proj")
    assert rec["layers"][0]["cycles"] == d[1].latency(2048, 2048)


def test_array_ifairy_and_merged():
    """Fairy±i (W only, one stage) with merged accumulators on 4 x 16, and Fairy2i merged on 3 x 10:
    K and rows that are not multiples of the shape."""
    d = design("4x16", stages=1, mode="ifairy", accumulate="merged")
    layers = [random_layer("ifairy", 23, 45, 1, 1, seed=3, mode="ifairy", accumulate="merged")]
    rec = run_job(d, layers, tag="array4x16_ifairy")
    record_cycles(d, rec, "array4x16_ifairy")
    d2 = design("3x10", accumulate="merged")
    rec = run_job(d2, [random_layer("merged", 21, 50, 2, 2, seed=5, accumulate="merged")],
                  tag="array3x10_merged")
    record_cycles(d2, rec, "array3x10_merged")


@pytest.mark.parametrize("shape", ["4x16", "3x10"])
def test_array_stalls_and_short_inputs(shape):
    """Random idles on every input and back-pressure on the output (nothing lost, duplicated or
    reordered), and short inputs (K below C, where the result drain holds the array) without stalls."""
    d = design(shape)
    layers = [random_layer("a", 19, 9, 2, 2, seed=11), random_layer("b", 8, 1, 2, 2, seed=12),
              random_layer("c", 3, 70, 2, 2, seed=13)]
    run_job(d, layers, idle=0.3, backpressure=0.5, seed=3, tag=f"array{shape}_stalls")
    rec = run_job(d, layers, tag=f"array{shape}_nostall")
    record_cycles(d, rec, f"array{shape}_nostall")


@pytest.mark.parametrize("shape", ["4x16", "3x10"])
def test_array_extremes(shape):
    """All activations -128 and all codes equal, K at the design maximum (2048): the widest sums."""
    d = design(shape)
    layers = [extreme_layer(f"extreme{c}", 5, 2048, 2, 2, c) for c in range(4)]
    rec = run_job(d, layers, tag=f"array{shape}_extremes")
    record_cycles(d, rec, f"array{shape}_extremes")
    for (_, codes, p, q, exp) in layers:
        assert torch.equal(exp, ref_results([[codes[t, 0], codes[t, 1]] for t in range(2)], p, q))


@pytest.mark.parametrize("reset_at", [3, 30, 60])
def test_array_reset_mid_layer(reset_at):
    """Reset while loading, computing and draining: clean idle, then exact."""
    d = design("3x10")
    rec = run_job(d, [random_layer("r", 16, 40, 2, 2, seed=reset_at)], testcase="reset_mid_layer",
                  reset_at=reset_at, tag=f"array_reset{reset_at}")
    assert rec["cycles"] == d[1].latency(40, 16)


def test_array_latency_and_model_match_every_measured_run():
    """Every stall-free array run of this module took exactly the latency function's cycles, which the
    performance model uses too."""
    import json
    from fairyhw.hw.config import EngineConfig
    from fairyhw.hw.timing import latency
    from fairyhw.perf import HardwareConfig, MacArray
    from test_engine import CYCLES
    runs = [r for r in json.loads(CYCLES.read_text())["runs"]
            if not r["stalls"] and r["config"]["lane_style"] == "array"]
    assert {(r["config"]["rows"], r["config"]["cols"]) for r in runs} >= {(4, 16), (3, 10)}
    for r in runs:
        cfg = EngineConfig.from_json(r["config"])
        assert r["cycles"] == latency(cfg, r["k"], r["rows"]) == \
            MacArray(HardwareConfig(cfg)).cycles(r["k"], r["rows"]), r
