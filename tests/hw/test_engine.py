"""The engine and the generator, in Amaranth's own simulator, against the golden integer path."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fairyhw.hw import Engine, engine_cycles
from fairyhw.hw.driver import ref_results
from fairyhw.hw.simulate import rtl_engine

ROOT = Path(__file__).resolve().parents[2]




def layer(rows, k, stages, matrices, seed, extreme=None):
    g = torch.Generator().manual_seed(seed)
    if extreme is None:
        mats = [[torch.randint(0, 4, (rows, k), dtype=torch.uint8, generator=g) for _ in range(matrices)]
                for _ in range(stages)]
        p = torch.randint(-128, 128, (k,), dtype=torch.int8, generator=g)
        q = torch.randint(-128, 128, (k,), dtype=torch.int8, generator=g)
    else:
        mats = [[torch.full((rows, k), extreme, dtype=torch.uint8) for _ in range(matrices)]
                for _ in range(stages)]
        p = q = torch.full((k,), -128, dtype=torch.int8)
    return mats, p, q


@pytest.mark.parametrize("lanes, stages, mode, accumulate, sharing, lane_style", [
    (1, 1, "fairy2i", "split", "buffer", "output"), (3, 2, "fairy2i", "split", "buffer", "output"),
    (8, 2, "fairy2i", "merged", "buffer", "output"), (8, 3, "ifairy", "split", "buffer", "output"),
    (5, 1, "ifairy", "merged", "buffer", "output"), (16, 4, "fairy2i", "split", "buffer", "output"),
    (1, 2, "fairy2i", "split", "stream", "output"), (3, 1, "ifairy", "merged", "stream", "output"),
    (8, 2, "fairy2i", "split", "stream", "output"),
    (1, 1, "fairy2i", "split", "buffer", "dot"), (3, 2, "fairy2i", "split", "buffer", "dot"),
    (8, 2, "fairy2i", "merged", "buffer", "dot"), (5, 3, "ifairy", "split", "buffer", "dot"),
    (16, 4, "fairy2i", "split", "buffer", "dot"), (12, 1, "ifairy", "merged", "buffer", "dot")])
def test_engine_against_golden(lanes, stages, mode, accumulate, sharing, lane_style):
    eng = Engine(lanes=lanes, max_in=40, max_out=40, stages=stages, mode=mode, accumulate=accumulate,
                 sharing=sharing, lane_style=lane_style)
    m = len(eng.matrices)
    shapes = [(lanes, 1), (2 * lanes + 1, 7), (1, 40), (min(40, 3 * lanes), 5)]
    layers = [layer(r, k, stages, m, seed=i) for i, (r, k) in enumerate(shapes)]
    layers.append(layer(3, 40, stages, m, 0, extreme=3))
    runs = rtl_engine(eng, layers)
    for run, (mats, p, q) in zip(runs, layers):
        assert torch.equal(run.sums, ref_results(mats, p, q, mode=mode, accumulate=accumulate))
        rows, k = mats[0][0].shape
        assert run.cycles == eng.latency(k, rows)
        assert run.lasts == [0] * (len(run.lasts) - 1) + [1]


@pytest.mark.parametrize("lane_style", ["output", "dot"])
@pytest.mark.parametrize("code", [0, 1, 2, 3])
def test_engine_extremes_fit_accumulators(code, lane_style):
    eng = Engine(lanes=2, max_in=64, max_out=8, stages=1, lane_style=lane_style)
    mats, p, q = layer(3, 64, 1, 2, 0, extreme=code)
    run, = rtl_engine(eng, [(mats, p, q)])
    assert torch.equal(run.sums, ref_results(mats, p, q))
    assert int(run.sums.abs().max()) == 128 * 64


@pytest.mark.parametrize("sharing, lane_style", [("buffer", "output"), ("stream", "output"),
                                                 ("buffer", "dot")])
def test_engine_stalls_in_amaranth_sim(sharing, lane_style):
    eng = Engine(lanes=4, max_in=16, max_out=16, stages=2, sharing=sharing, lane_style=lane_style)
    layers = [layer(9, 6, 2, 2, seed=s) for s in range(3)]
    runs = rtl_engine(eng, layers, idle=0.4, backpressure=0.5, seed=9)
    for run, (mats, p, q) in zip(runs, layers):
        assert torch.equal(run.sums, ref_results(mats, p, q))
        assert run.cycles > eng.latency(6, 9)


def test_latency_formula_small_cases():
    # K=1, rows=1, one pass: cmd, 1 act, 1 wgt, two pipeline stages, shadow, result
    assert engine_cycles(1, 1, lanes=1, stages=1, matrices=1) == 2 + 0 + 1 + 3
    # drain-bound passes: K=1 < 2 + c
    assert engine_cycles(1, 4, lanes=4, stages=1, matrices=2) == 2 + 6 + 4 + 3
    # streamed activations: no buffer fill, the first pass starts at once
    assert engine_cycles(100, 64, lanes=64, stages=2, matrices=2, sharing="stream") == \
        100 + 3 * 100 + 64 + 3
    assert engine_cycles(100, 64, lanes=64, stages=2, matrices=2) == 200 + 3 * 100 + 64 + 3
    # dot lanes: K=100 over 64 lanes is 2 words a pass, below the 4-cycle result spacing
    assert engine_cycles(100, 3, lanes=64, stages=2, matrices=2, lane_style="dot") == \
        100 + 2 + 11 * 4 + 5
    # ... and 4096 over 64 lanes is 64 words a pass: full use of the lanes
    assert engine_cycles(4096, 8, lanes=64, stages=2, matrices=2, lane_style="dot") == \
        4096 + 64 + 31 * 64 + 5


@pytest.mark.parametrize("kwargs, exc, msg", [
    ({"lanes": 0}, ValueError, "Lane count must be an integer from 1 to 65536, not 0"),
    ({"lanes": 5000, "lane_style": "output"}, ValueError,
     "Output lanes go up to 4096, not 5000: use the array style for more"),
    ({"lanes": 2.0}, TypeError, "Lane count must be an integer, not 2.0"),
    ({"stages": 5}, ValueError, "Stage count must be an integer from 1 to 4, not 5"),
    ({"max_in": 0}, ValueError, "Maximum input length must be an integer from 1 to 1048576, not 0"),
    ({"max_out": True}, TypeError, "Maximum output rows must be an integer, not True"),
    ({"mode": "x"}, ValueError, "Mode must be one of fairy2i, ifairy, not 'x'"),
    ({"accumulate": "x"}, ValueError, "Accumulator style must be one of split, merged, not 'x'"),
    ({"sharing": "x"}, ValueError, "Activation sharing must be one of buffer, stream, not 'x'"),
    ({"lane_style": "x"}, ValueError, "Lane style must be one of output, dot, array, not 'x'"),
    ({"lane_style": "dot", "sharing": "stream"}, ValueError,
     "Dot-product lanes read their activations from the buffer: sharing must be 'buffer'"),
])
def test_engine_parameter_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=f"^{msg}$".replace("(", r"\(").replace(")", r"\)")):
        Engine(**kwargs)


def gen(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fairyhw.gen", *args], capture_output=True, text=True,
                          cwd=cwd)


def test_committed_rtl_matches_generator(tmp_path):
    r = gen("--lanes", "64", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    for f in ("fairyhw_engine.v", "fairyhw_engine.json"):
        assert (tmp_path / f).read_bytes() == (ROOT / "rtl" / f).read_bytes(), f


def test_generation_is_deterministic_and_path_free(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    assert gen("--lanes", "3", "--stages", "1", "--out", str(a)).returncode == 0
    assert gen("--lanes", "3", "--stages", "1", "--out", str(b)).returncode == 0
    for f in ("fairyhw_engine.v", "fairyhw_engine.json"):
        text = (a / f).read_bytes()
        assert text == (b / f).read_bytes()
        assert str(tmp_path).encode() not in text and str(ROOT).encode() not in text
    man = json.loads((a / "fairyhw_engine.json").read_text())
    assert man["parameters"]["lanes"] == 3 and man["accumulator_width"] == 22
    ports = {p["name"]: p for p in man["ports"]}
    assert ports["wgt__payload"]["width"] == 6 and ports["res__payload"]["width"] == 4 * 22 + 1
    assert [f["name"] for f in ports["cmd__payload"]["fields"]] == ["k", "rows"]
    assert "multipliers" in man["resources"] and man["resources"]["multipliers"] == 0


@pytest.mark.parametrize("args, msg", [
    (["--lanes", "0"], "argument --lanes: lanes must be from 1 to 65536, not 0"),
    (["--lanes", "-4"], "argument --lanes: lanes must be from 1 to 65536, not -4"),
    (["--lanes", "2.5"], "argument --lanes: lanes must be an integer, not '2.5'"),
    (["--lanes", "1000000"], "argument --lanes: lanes must be from 1 to 65536, not 1000000"),
    (["--mode", "bitnet"], "argument --mode: invalid choice: 'bitnet'"),
    (["--accumulate", "x"], "argument --accumulate: invalid choice: 'x'"),
    (["--sharing", "x"], "argument --sharing: invalid choice: 'x'"),
    (["--name", "9bad"], "argument --name: must be a Verilog identifier, not '9bad'"),
    (["--lane-style", "lut"], "argument --lane-style: invalid choice: 'lut'"),
    (["--lane-style", "dot", "--sharing", "stream"],
     "Dot-product lanes read their activations from the buffer: sharing must be 'buffer'"),
    (["--lane-style", "output", "--rows", "4"],
     "--rows is a parameter of the array style, not of --lane-style output"),
    (["--rows", "3", "--cols", "5", "--lanes", "16"],
     "Array shape 3 x 5 gives 15 MACs per cycle, not the 16 lanes asked for"),
])
def test_gen_bad_options(tmp_path, args, msg):
    r = gen(*args, "--out", str(tmp_path))
    assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    if lines[0].startswith("error: argument"):
        assert lines[0].endswith("(see python -m fairyhw.gen --help)")
    assert list(tmp_path.iterdir()) == []


def test_gen_unwritable_output(tmp_path):
    r = gen("--out", str(tmp_path / "missing" / "rtl"))
    assert r.returncode == 2 and \
        r.stderr.strip() == f"error: --out: the folder {tmp_path / 'missing'} does not exist"
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        r = gen("--out", str(ro))
        if r.returncode == 0:       # root ignores directory permissions
            pytest.skip("running as root: directory permissions are not enforced")
        assert r.returncode == 2 and "is not writable" in r.stderr
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)
