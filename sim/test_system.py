"""The system top (fairyhw.hw.system) in Verilator: layers laid out in memory by the host driver
(fairyhw.hw.host), run from a descriptor list through the AXI4 masters and the AXI4-Lite registers,
their results read back from memory and compared with the golden integer path with ``==``
(see system_tb.py)."""

import json
import pickle
import sys
from pathlib import Path

import pytest
import torch

from fairyhw.hw.config import ERRORS
from fairyhw.hw.host import descriptor, lay_out
from fairyhw.hw.system import ERROR_CODES, SystemTop, wrapper_verilog
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))      # for tests.test_cli_safety
from test_engine import build_component, random_layer, run_testcase


def build_system(name, cfg):
    top = SystemTop(cfg)
    runner, bdir = build_component(f"system_{name}", top, wrapper_verilog(top, "inner", "top"))
    return runner, bdir, cfg


def run_system(design, runs, **kw):
    """Run ``runs`` (dicts: ``chunks``, ``desc_addr``, ``count``, ``results`` [(addr, bytes)], and
    optionally ``soft_reset_after``) in one simulation; returns the testbench's record per run. The
    testbench fails the run if any channel breaks the AXI handshake rule (sim/axi_rules.py). Keyword
    arguments as :func:`run_system_held`."""
    return run_system_held(design, runs, **kw)[0]


def run_system_held(design, runs, *, memory=None, mem_size=1 << 24, limit=2_000_000, tag="job",
                    trace=False):
    """:func:`run_system`, and the cycles each AXI channel's valid waited on ready: ``(records,
    held)``."""
    runner, bdir, cfg = design
    job, out = bdir / f"{tag}.runs.pkl", bdir / f"{tag}.out.pkl"
    job.write_bytes(pickle.dumps(runs))
    env = {"memory": memory or {"kind": "ram", "pause": 0.0}, "mem_size": mem_size,
           "weight_ports": cfg.weight_ports, "runs": str(job), "limit": limit, "trace": trace}
    run_testcase(runner, bdir, "runs", test_module="system_tb", tag=tag,
                 env={"FAIRYHW_SYSTEM": json.dumps(env), "FAIRYHW_OUT": str(out)})
    *recs, checks = pickle.loads(out.read_bytes())
    return recs, checks["held"]


def layout_run(cfg, layers, base=0):
    """A run of ``layers`` ((name, codes, p, q, expected) each) and its layout."""
    lay = lay_out(cfg, [(c, p, q) for _, c, p, q, _ in layers], base=base)
    return lay, {"chunks": lay.chunks, "desc_addr": lay.desc_addr, "count": lay.count,
                 "results": [(pl.res, pl.res_bytes) for pl in lay.places]}


def check_run(lay, layers, rec):
    st = rec["status"]
    assert (st["done"], st["error"], st["busy"]) == (1, 0, 0), st
    assert rec["irq"] == 1
    assert st["layer"] == len(layers)
    assert st["results"] == sum(lay.config.engine.result_count(pl.rows) for pl in lay.places)
    for i, (name, _, _, _, exp) in enumerate(layers):
        assert torch.equal(lay.results(i, rec["results"][i]), exp), name


@pytest.fixture(scope="module")
def small():
    """A 2 x 8 array on 64-bit memory with two weight ports (16 bits of each weight word each)."""
    from memory_sweep import DESIGNS
    return build_system("2x8_d64_p2", DESIGNS["2x8_d64_p2"][0])


def small_layers(seed=0):
    shapes = [(5, 13), (2, 8), (1, 1), (9, 64), (3, 20)]
    return [random_layer(f"l{i}", r, k, 2, 2, seed + i) for i, (r, k) in enumerate(shapes)]


@pytest.mark.parametrize("pause", [0.0, 0.4])
def test_descriptor_list_with_backpressure(small, pause):
    """Five layers from one descriptor list, the memory's channels paused at random."""
    layers = small_layers()
    lay, run = layout_run(small[2], layers)
    rec, = run_system(small, [run], memory={"kind": "ram", "pause": pause}, tag=f"list_{pause}")
    check_run(lay, layers, rec)


def test_bad_descriptors_give_error_status(small):
    """Each bad value stops the run with its error code (never a hang); the next run works."""
    cfg = small[2]
    good = small_layers(5)[:2]
    lay, ok_run = layout_run(cfg, good)
    pl = lay.places[0]
    base = lay.end                  # bad descriptors live past the good layout

    def one(**kw):
        d = dict(k=pl.k, rows=pl.rows, act=pl.act, wgt=pl.wgt, wgt_stride=pl.wgt_stride, res=pl.res)
        d.update(kw)
        return {"chunks": {base: descriptor(**d)}, "desc_addr": base, "count": 1, "results": []}
    cases = [
        ("list", {"chunks": {}, "desc_addr": base, "count": 0, "results": []}),
        ("list", {"chunks": {}, "desc_addr": base + 32, "count": 1, "results": []}),
        ("k", one(k=0)), ("k", one(k=65)), ("rows", one(rows=0)), ("rows", one(rows=65)),
        ("align", one(act=pl.act + 4)), ("align", one(wgt_stride=pl.wgt_stride + 8 + 4)),
        ("range", one(res=1 << 32)), ("range", one(act=(1 << 32) - 8)),
        ("range", one(res=(1 << 32) - cfg.word_bytes)),     # the results' first burst runs past the top
        ("range", {"chunks": {}, "desc_addr": (1 << 32) | base, "count": 1, "results": []}),
        # port 1's first pass ends at the top, its second runs past it (the carry into the high
        # half of the port's last byte)
        ("range", one(wgt=(1 << 32) - pl.wgt_stride - cfg.pass_memory_words(pl.k) * cfg.word_bytes)),
    ]
    runs = [r for _, r in cases] + [ok_run]
    recs = run_system(small, runs, tag="errors")
    for (what, _), rec in zip(cases, recs):
        st = rec["status"]
        assert (st["busy"], st["done"], st["error"]) == (0, 0, 1), (what, st)
        assert st["error_code"] == ERROR_CODES[what], (what, st)
        assert st["error_text"] == ERRORS[ERROR_CODES[what]]
        assert rec["irq"] == 1
    check_run(lay, good, recs[-1])


def test_read_error_response(small):
    """A weight region past the memory's end: the memory answers DECERR, the layer still ends
    (its data dropped) and the run stops with error 6."""
    cfg = small[2]
    layers = small_layers(9)[:1]
    lay, run = layout_run(cfg, layers)
    pl = lay.places[0]
    size = 1 << 20
    run["chunks"][lay.desc_addr] = descriptor(pl.k, pl.rows, pl.act, size - 8, pl.wgt_stride, pl.res)
    rec, = run_system(small, [run], memory={"kind": "model", "bytes_per_cycle": 8, "latency": 5,
                                            "outstanding": 4}, mem_size=size, tag="decerr")
    st = rec["status"]
    assert (st["error"], st["error_code"], st["busy"]) == (1, ERROR_CODES["read"], 0), st


def check_soft_resets(small, afters, pause, tag, **kw):
    """A run of three layers soft-reset after each of ``afters`` cycles, each followed by a full run,
    the memory's channels pausing at random (``pause``, six cycles at a time, so that an address
    offered as the soft reset comes waits a while): each aborted run ends idle without an error, and
    each full run is exact. ``kw`` goes to :func:`run_system`; returns its ``held`` (the cycles each
    AXI channel's valid waited on ready)."""
    cfg = small[2]
    layers = small_layers(3)
    lay, run = layout_run(cfg, layers)
    runs = [r for after in afters for r in (dict(run, soft_reset_after=after), run)]
    recs, held = run_system_held(small, runs, memory={"kind": "ram", "pause": pause, "run": 6}, tag=tag,
                                 **kw)
    for after, aborted, full in zip(afters, recs[::2], recs[1::2]):
        st = aborted["status"]
        assert (st["busy"], st["done"], st["error"]) == (0, 0, 0), (after, st)
        check_run(lay, layers, full)
    return held


@pytest.mark.parametrize("pause", [0.0, 0.5])
def test_soft_reset_mid_run(small, pause):
    """Soft resets at several points of a run (fetching a descriptor, loading, streaming weights,
    writing results): each time the core drains its bursts and idles, and the next run's results are
    exact. With the memory's channels paused at random, a soft reset also comes while an address
    waits for its handshake: the address stays offered (the AXI rule the testbench checks)."""
    afters = [2, 12, 30, 150, 200, 250] if pause == 0 else [3, 5, 9, 17, 40, 75, 120, 180, 260, 330]
    held = check_soft_resets(small, afters, pause, f"soft_{pause}")
    if pause:                                       # every channel's valid waited on ready at times
        assert all(held.values()), held


def test_soft_reset_at_every_cycle(small):
    """A soft reset at every cycle from 200 to 279 of a run (while the first layer's results are
    packed and written), each followed by a full run: each of those is exact. (A soft reset at
    cycles 234-241 once left the write side counting a word that the datapath's reset dropped, and
    the next run waited for it for ever.)"""
    check_soft_resets(small, range(200, 280), 0.0, "soft_every", limit=50_000)


@pytest.fixture(scope="module")
def default_system():
    """The default 64-MAC engine (a 1 x 64 array) on 256-bit memory, one weight port."""
    from memory_sweep import DESIGNS
    return build_system("1x64_d256_p1", DESIGNS["1x64_d256_p1"][0])


def test_smollm2_block_from_memory(default_system, smollm2_vectors):
    """SmolLM2-135M's q, k, v, o, gate, up and down of block 1 (real activations, W2) as one
    descriptor list of 7 layers on a memory that pauses every channel at random, results read back
    ``==`` the golden integer path (``sim/test_run.py`` runs whole blocks and the lm_head on a
    memory without pauses)."""
    from fairyhw.model.vectors import quantized_layer_vectors
    layers = []
    for name, (w, x) in smollm2_vectors.items():
        if ".layers.1." not in name:
            continue
        _, act, codes, exp = quantized_layer_vectors(w, x, 2)
        layers.append((name, codes, act.p, act.q, exp))
    lay, run = layout_run(default_system[2], layers)
    rec, = run_system(default_system, [run], memory={"kind": "ram", "pause": 0.2}, mem_size=1 << 26,
                      limit=5_000_000, tag="smollm2")
    check_run(lay, layers, rec)


def test_llama2_7b_q_proj_from_memory(default_system):
    """A LLaMA-2 7B shaped q_proj (2048 x 2048 complex U and W, W2) through the system top."""
    from test_engine import llama2_q_proj
    layers = [llama2_q_proj()]
    lay, run = layout_run(default_system[2], layers)
    rec, = run_system(default_system, [run], memory={"kind": "model", "bytes_per_cycle": 32,
                                                     "latency": 30, "outstanding": 8},
                      mem_size=1 << 26, limit=5_000_000, tag="llama_q")
    check_run(lay, layers, rec)


@pytest.mark.parametrize("name", ["2x8_d64_p2"])
def test_memory_side_of_the_cycle_model(name):
    """Three memory points (compute-bound, bandwidth-bound, round-trip-bound) on the design with two
    weight ports: the measured cycles equal ``system_cycles`` where compute bounds and are within 5%
    elsewhere (python sim/memory_sweep.py runs the whole sweep on both designs for the report; the
    default 1 x 64 design is checked exact at every layer of sim/test_run.py)."""
    from memory_sweep import measure
    rows = measure(name, [(1.0, 1, 8), (0.25, 10, 4), (1.0, 100, 1)])
    assert [r["bound"] for r in rows][0] == "compute" and rows[-1]["bound"] == "memory"
    for r in rows:
        if r["bound"] == "compute":
            assert r["predicted"] == r["measured"], r
        assert abs(r["predicted"] - r["measured"]) <= 0.05 * r["measured"], r


def test_layers_from_a_quant_directory(small, tmp_path):
    """A checkpoint quantized by ``fairyhw quant`` for the system's engine: its weight images laid out
    by the host driver (load_quant), run from one descriptor list; results ``==`` the golden integer
    sums of the same codes."""
    import numpy as np
    from fairyhw.flow.quant import quantize_checkpoint
    from fairyhw.hw.driver import ref_results
    from fairyhw.hw.host import load_quant
    from fairyhw.model.checkpoint import load_checkpoint
    from fairyhw.model.pack import unstream_words_array
    sys_cfg = small[2]
    e = sys_cfg.engine
    from tests.test_cli_safety import write_llama          # the repository root is on the path
    ck = write_llama(str(tmp_path / "m"), hidden=16, inter=40)
    quantize_checkpoint(load_checkpoint(ck), str(tmp_path / "q"), engine=e)
    qls = load_quant(str(tmp_path / "q"), sys_cfg)
    assert len(qls) == 8                      # q, k, v, o, gate, up, down and the tied lm_head
    g = torch.Generator().manual_seed(4)
    layers, items = [], []
    for ql in qls:
        p = torch.randint(-128, 128, (ql.k,), dtype=torch.int8, generator=g)
        q = torch.randint(-128, 128, (ql.k,), dtype=torch.int8, generator=g)
        packed = np.array([list(w.to_bytes(-(-2 * e.lanes // 8), "little")) for w in ql.words], np.uint8)
        codes = unstream_words_array(packed, e.rows, e.cols, ql.rows, ql.k, e.stages, 2)
        layers.append((ql.name, None, p, q, ref_results(codes, p, q)))
        items.append((ql, p, q))
    from fairyhw.hw.host import lay_out
    lay = lay_out(sys_cfg, items)
    run = {"chunks": lay.chunks, "desc_addr": lay.desc_addr, "count": lay.count,
           "results": [(pl.res, pl.res_bytes) for pl in lay.places]}
    rec, = run_system(small, [run], tag="quant")
    check_run(lay, layers, rec)
