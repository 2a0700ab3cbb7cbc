"""Design-space exploration: config validation, points, caching, failures, local pool and Dask."""

import json
import subprocess
import sys

import pytest

from fairyhw import FairyError
from fairyhw.explore.accuracy import variant_snr
from fairyhw.explore.runner import run_point, run_sweep
from fairyhw.explore.sweep import Point, load_config, points_of


def tiny(**kw):
    return load_config({"lanes": [1, 2], "max_in": [16], "accumulate": ["split"], "baselines": [2],
                        "lane_style": ["output"], "arrays": [],
                        "pnr": False, "accuracy": False, "memory": ["ddr4-2400-x64"], **kw})


def test_points_of_config():
    cfg = tiny(accumulate=["split", "merged"], lane_style=["output", "dot"])
    pts = points_of(cfg)
    assert [p.label() for p in pts] == [
        "1 lanes split T2 fairy2i", "1 lanes split T2 fairy2i dot", "1 lanes merged T2 fairy2i",
        "1 lanes merged T2 fairy2i dot", "2 lanes split T2 fairy2i", "2 lanes split T2 fairy2i dot",
        "2 lanes merged T2 fairy2i", "2 lanes merged T2 fairy2i dot",
        "baseline-complex-int8 x2", "baseline-ternary x2"]
    assert len({p.key() for p in pts}) == len(pts)
    arr = points_of(tiny(arrays=[[2, 4], [3, 8]], extrapolate_above=16, baselines=[]))
    assert [p.label() for p in arr] == ["1 lanes split T2 fairy2i", "2 lanes split T2 fairy2i",
                                        "2x4 array split T2 fairy2i",
                                        "3x8 array split T2 fairy2i (extrapolated)"]
    assert arr[3].engine().rows == 3 and arr[3].engine().group == 1


@pytest.mark.parametrize("obj, msg", [
    ([], "sweep config must be a JSON object, not list"),
    ({"lane": [8]}, "unknown sweep config key 'lane'"),
    ({"lanes": []}, "lanes must be a non-empty list, not []"),
    ({"lanes": [0]}, "lanes values must be integers from 1 to 4096, not 0"),
    ({"lanes": [8.5]}, "lanes values must be integers from 1 to 4096, not 8.5"),
    ({"accumulate": ["fast"]}, "accumulate values must be among split, merged, not 'fast'"),
    ({"lane_style": ["lut"]}, "lane_style values must be among output, dot, not 'lut'"),
    ({"memory": ["sram"]}, "memory values must be among"),
    ({"clock_mhz": [0]}, "clock_mhz must be a non-empty list of numbers in (0, 2000), not [0]"),
    ({"act_bits": [4]}, "act_bits must be [8]: the generator supports int8 activations only"),
    ({"pnr": "yes"}, "pnr must be true or false, not 'yes'"),
    ({"arrays": [[2]]}, "arrays must be a list of [rows, cols] pairs (cols 1 to 1024, rows x cols at most "
                        "65536), not [[2]]"),
    ({"arrays": [[2, 2000]]}, "arrays must be a list of [rows, cols] pairs"),
    ({"extrapolate_above": 0}, "extrapolate_above must be a positive integer (MACs per cycle), not 0"),
])
def test_config_errors(obj, msg):
    with pytest.raises(FairyError) as e:
        load_config(obj)
    assert str(e.value).startswith(msg)


def test_failed_point_is_recorded_not_raised():
    rec = run_point(Point("baseline-bogus", 2, max_in=0, targets=("ecp5",), pnr=False))
    assert rec["ok"] is False and "FileNotFoundError" in rec["error"]


def test_sweep_local_pool_and_cache(tmp_path):
    cfg = tiny(lanes=[1])               # one engine and both baselines: three syntheses in the pool
    pts = points_of(cfg)
    recs = run_sweep(pts, str(tmp_path), workers=2, progress=False)
    assert all(r["ok"] for r in recs), [r.get("error") for r in recs]
    eng = recs[0]["synth"]["ecp5"]["summary"]
    assert eng["multipliers"] == 0 and eng["lut_equiv"] > 0
    assert recs[-2]["synth"]["xilinx"]["summary"]["multipliers"] > 0     # the complex int8 baseline
    # a rerun does no new work: every point comes from the cache, unchanged
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    again = run_sweep(pts, str(tmp_path), workers=2, progress=False)
    assert again == recs and {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == mtimes


def test_sweep_on_local_dask_cluster(tmp_path):
    from distributed import Client, LocalCluster
    pts = points_of(tiny(lanes=[3], baselines=[]))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            Client(cl) as client:
        recs = run_sweep(pts, str(tmp_path), client=client, progress=False)
    assert len(recs) == 1 and recs[0]["ok"] and recs[0]["point"]["lanes"] == 3


def test_variant_snr_split_beats_merged():
    import torch
    g = torch.Generator().manual_seed(0)
    layers = {"a": (torch.randn(64, 96, generator=g) * 0.05, torch.randn(96, generator=g))}
    split, merged = variant_snr("split", 2, layers), variant_snr("merged", 2, layers)
    assert 20 < split < 80 and merged < split


def test_cli_tiny_sweep_and_bad_config(tmp_path):
    cfgf = tmp_path / "sweep.json"
    cfgf.write_text(json.dumps({"lanes": [2], "max_in": [16], "baselines": [], "pnr": True,
                                "lane_style": ["output", "dot"],
                                "accumulate": ["split"], "accuracy": False, "arrays": [],
                                "memory": ["ddr4-2400-x64"]}))
    out = tmp_path / "rep"
    r = subprocess.run([sys.executable, "-m", "fairyhw", "dse", "--config", str(cfgf), "--out", str(out),
                        "--cache", str(tmp_path / "cache"), "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "2 points (0 failed)" in r.stdout
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert {row["lane_style"] for row in rows} == {"output", "dot"}
    assert all(row["fmax_mhz"] and row["clock_from"] == "pnr" for row in rows)
    for f in ("dse.md", "results.csv", "dse_tokens_per_s.png", "dse_tokens_per_j.png",
              "dse_luts_and_clock.png", "dse_best_breakdown.png"):
        assert (out / f).exists(), f
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    r = subprocess.run([sys.executable, "-m", "fairyhw", "dse", "--config", str(bad), "--out", str(out / "x")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith(f"error: {bad}: not valid JSON")
    assert not (out / "x").exists()


@pytest.mark.parametrize("target", ["ecp5", "xilinx"])
def test_single_target_sweep_is_deterministic(target, tmp_path):
    """One target only: the report is written (plots on that target's LUTs); a rerun from the cache
    gives byte-identical results and markdown (wall-clock times live in timings.json only)."""
    cfgf = tmp_path / "sweep.json"
    cfgf.write_text(json.dumps({"lanes": [1], "max_in": [16], "baselines": [], "pnr": False,
                                "accumulate": ["split"], "lane_style": ["output"], "accuracy": False,
                                "arrays": [[1, 2]],
                                "memory": ["ddr4-2400-x64"], "targets": [target]}))
    outs = []
    for run in range(2):
        out = tmp_path / f"rep{run}"
        r = subprocess.run([sys.executable, "-m", "fairyhw", "dse", "--config", str(cfgf), "--out", str(out),
                            "--cache", str(tmp_path / "cache"), "--no-progress"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        outs.append(out)
    for f in ("results.json", "results.csv", "dse.md"):
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f
    assert "seconds" not in (outs[0] / "results.json").read_text()
    assert json.loads((outs[0] / "timings.json").read_text())["total_seconds"] >= 0
    assert (outs[0] / "dse_tokens_per_s.png").stat().st_size > 0
