"""The cycle model's memory side against co-simulation: layers run through the system top
(fairyhw.hw.system) on the memory model (sim/axi_memory.py) at set bandwidth, latency and
outstanding bursts, the measured cycles (the core's own cycle counter) beside
``fairyhw.hw.timing.system_cycles``.

``python sim/memory_sweep.py`` runs the whole sweep and writes reports/memory_validation.{json,md,png};
sim/test_system.py runs a few of its points."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from fairyhw.hw.config import EngineConfig, SystemConfig  # noqa: E402
from fairyhw.hw.timing import system_cycles  # noqa: E402

#: Designs: a name, its system configuration, and the layers ((rows, k) each) of its descriptor list.
DESIGNS = {
    "2x8_d64_p2": (SystemConfig(engine=EngineConfig.array(2, 8, max_in=64, max_out=64), data_width=64,
                                weight_ports=2, addr_width=32, max_burst=8, outstanding=4),
                   [(9, 64), (5, 13), (1, 1), (16, 40), (3, 33)]),
    "1x64_d256_p1": (SystemConfig(engine=EngineConfig(max_in=2048, max_out=2048), data_width=256,
                                  addr_width=32),
                     [(64, 512), (40, 200), (16, 64)]),
}
#: Memory points (bytes a cycle per port, latency, outstanding bursts), from compute-bound (a word a
#: cycle, short latency) to memory-bound (an eighth of a word a cycle, or long latency and one burst
#: in flight), per design as a fraction of its word.
POINTS = [(1.0, 1, 8), (1.0, 30, 8), (0.5, 10, 4), (0.25, 10, 4), (1.0, 60, 2), (1.0, 100, 1),
          (0.125, 20, 8), (0.25, 80, 2)]


def measure(name, points):
    """Run the design's layers (one descriptor list) at each memory point; rows of measured and
    predicted cycles."""
    from test_engine import random_layer
    from test_system import build_system, layout_run, run_system
    cfg, shapes = DESIGNS[name]
    design = build_system(name, cfg)
    layers = [random_layer(f"l{i}", r, k, cfg.engine.stages, len(cfg.engine.matrices), i)
              for i, (r, k) in enumerate(shapes)]
    rows = []
    for frac, lat, ost in points:
        bpc = frac * cfg.word_bytes
        lay, run = layout_run(cfg, layers)
        mem = {"kind": "model", "bytes_per_cycle": bpc, "latency": lat, "outstanding": ost}
        rec, = run_system(design, [run], memory=mem, tag=f"sweep_{frac}_{lat}_{ost}")
        st = rec["status"]
        assert (st["done"], st["error"]) == (1, 0), st
        for i, (_, _, _, _, exp) in enumerate(layers):
            import torch
            assert torch.equal(lay.results(i, rec["results"][i]), exp)
        pred = system_cycles(cfg, [(k, r) for r, k in shapes], bytes_per_cycle=bpc, latency=lat,
                             outstanding=ost)
        bounds = [l["bound"] for l in pred["layers"]]
        rows.append({"design": name, "bytes_per_cycle": bpc, "word_bytes": cfg.word_bytes,
                     "latency": lat, "outstanding": ost, "measured": st["cycles"],
                     "stall": st["stall"], "predicted": pred["cycles"],
                     "compute": pred["compute"],
                     "bound": "compute" if all(b == "compute" for b in bounds) else
                              "memory" if all(b == "memory" for b in bounds) else "mixed"})
    return rows


def write_report(rows, out):
    out.mkdir(parents=True, exist_ok=True)
    worst = max(abs(r["predicted"] - r["measured"]) / r["measured"] for r in rows)
    exact = all(r["predicted"] == r["measured"] for r in rows if r["bound"] == "compute")
    (out / "memory_validation.json").write_text(json.dumps(
        {"designs": {n: {"config": c.to_json(), "layers_rows_k": s} for n, (c, s) in DESIGNS.items()},
         "points": rows, "worst_error": worst, "compute_bound_exact": exact}, indent=1) + "\n")
    lines = ["# The cycle model's memory side, checked in co-simulation", "",
             "Each design runs its layers as one descriptor list through the system top (AXI4 masters, "
             "registers, descriptor sequencer) on the co-simulation's memory model: every read port at "
             "the stated bandwidth, latency (cycles from a burst's address to its first word) and "
             "outstanding bursts; writes answered at once. *Measured* is the core's own cycle counter "
             "(start to idle); *predicted* is `fairyhw.hw.timing.system_cycles` for the same layers and "
             "memory. *Compute* is the model's cycles had every weight word come as soon as the array "
             "takes it; *bound* says which bound each layer (compute, memory, or some of each). "
             "Results of every run equal the golden integer path.", "",
             f"Worst error {worst:.2%}; compute-bound points {'exactly equal' if exact else 'NOT all equal'}. "
             "Made by `python sim/memory_sweep.py`.", "",
             "![predicted vs measured](memory_validation.png)", "",
             "| design | bytes/cycle (of a word) | latency | outstanding | measured | predicted | error | compute | stall cycles | bound |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        err = (r["predicted"] - r["measured"]) / r["measured"]
        lines.append(f"| {r['design']} | {r['bytes_per_cycle']:g} ({r['bytes_per_cycle'] / r['word_bytes']:g}) | "
                     f"{r['latency']} | {r['outstanding']} | {r['measured']} | {r['predicted']} | "
                     f"{err:+.2%} | {r['compute']} | {r['stall']} | {r['bound']} |")
    lines += ["", "Designs: " + "; ".join(
        f"`{n}`: {c.engine.rows} x {c.engine.cols} array, {c.data_width}-bit memory, "
        f"{c.weight_ports} weight port{'s' if c.weight_ports > 1 else ''}, bursts of {c.max_burst}, "
        f"layers (rows, k) {s}" for n, (c, s) in DESIGNS.items()) + "."]
    (out / "memory_validation.md").write_text("\n".join(lines) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for bound, marker in (("compute", "o"), ("mixed", "s"), ("memory", "^")):
        pts = [r for r in rows if r["bound"] == bound]
        if pts:
            ax.scatter([r["measured"] for r in pts], [r["predicted"] for r in pts], marker=marker,
                       label=f"{bound}-bound")
    hi = max(max(r["measured"], r["predicted"]) for r in rows) * 1.1
    lo = min(min(r["measured"], r["predicted"]) for r in rows) / 1.1
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="predicted = measured")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured cycles (co-simulation)")
    ax.set_ylabel("predicted cycles (system_cycles)")
    ax.set_title(f"Memory side of the cycle model: worst {worst:.2%}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "memory_validation.png", dpi=110, metadata={"Software": None})
    return worst, exact


def main():
    t0 = time.perf_counter()
    rows = [r for name in DESIGNS for r in measure(name, POINTS)]
    worst, exact = write_report(rows, HERE.parent / "reports")
    print(f"{len(rows)} points, worst error {worst:.2%}, compute-bound exact: {exact} "
          f"({time.perf_counter() - t0:.0f} s)")
    return 0 if worst <= 0.05 and exact else 1


if __name__ == "__main__":
    sys.exit(main())
