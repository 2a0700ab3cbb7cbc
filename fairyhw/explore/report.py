"""The sweep's report: projections of each point, Pareto fronts, tables and plots."""

from __future__ import annotations
from dataclasses import asdict
from ..perf.anchors import ANCHORS
from .sweep import KEYS, Point, SweepConfig


# ---------------------------------------------------------------------------------------------------
# projection and report

def project_record(rec: dict, cfg: SweepConfig, clocks: dict | None = None) -> list[dict]:
    """Rows of (point, memory) with LLaMA-2 7B projections at the point's achieved clock (or, for an
    extrapolated array, ``clocks[(cols, accumulate)]``: the largest placed array's of its columns)."""
    from ..perf import MEMORY_PRESETS, HardwareConfig, project, workload
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
    if r.get("fmax_mhz"):
        return f"{r['fmax_mhz']:.1f}"
    if r.get("extrapolated") and str(r.get("clock_from", "")).startswith("pnr of "):
        return f"not placed (projected at {r['clock_mhz']:.1f}, the {r['clock_from'][7:].split()[0]}'s)"
    return r.get("pnr_note") or "-"


#: The files a sweep writes into its report directory.
REPORT_FILES = ("results.csv", "results.json", "timings.json", "dse.md", "dse_tokens_per_s.png",
                "dse_tokens_per_j.png", "dse_luts_and_clock.png", "dse_best_breakdown.png")


def write_report(rows, files: dict, timings: dict, cfg: SweepConfig) -> None:
    """Write the report into ``files[name]`` (paths by the names of :data:`REPORT_FILES`). Results
    are deterministic; wall-clock figures go to ``timings.json`` only."""
    import matplotlib
    matplotlib.use("Agg")
    _write_data(rows, files, timings, cfg)
    lut_key = "xilinx_luts" if "xilinx" in cfg.targets else "ecp5_luts"
    lut_name = "Xilinx LUTs (Yosys synth_xilinx)" if lut_key == "xilinx_luts" else \
        "ECP5 LUT4 equivalents (Yosys synth_ecp5)"
    eng = [r for r in rows if r["kind"] == "engine" and r.get("ok") and r.get(lut_key)]
    _plot_pareto(eng, files, cfg, lut_key, lut_name)
    _plot_luts_and_clock(eng, files, cfg)
    best = max((r for r in eng if "decode_tok_j" in r), key=lambda r: r["decode_tok_j"], default=None)
    _plot_best(best, files)
    with open(files["dse.md"], "w") as f:
        f.write("\n".join(_markdown(rows, best)) + "\n")


def _write_data(rows, files, timings, cfg) -> None:
    """results.csv, results.json (deterministic) and timings.json."""
    import csv
    from ..outputs import dumps_json
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


def _plot_pareto(eng, files, cfg, lut_key, lut_name) -> None:
    """Decode tokens/s and tokens/J against LUTs, per memory and style, with each memory's Pareto
    front and the published anchors."""
    import matplotlib.pyplot as plt
    anchors = {short: (tps, tpj) for _, short, tps, tpj, _ in ANCHORS if short}
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


def _plot_luts_and_clock(eng, files, cfg) -> None:
    """LUTs per lane and the achieved clock against lanes (one row per point: first memory only)."""
    import matplotlib.pyplot as plt
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


def _plot_best(best, files) -> None:
    """Time and energy per token of the best tokens/J point, by part."""
    import matplotlib.pyplot as plt
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


def _markdown(rows, best) -> list:
    """The lines of dse.md."""
    L = ["# Design-space exploration\n",
         "Generated by `fairyhw dse` (wall-clock times are in `timings.json`; cached points "
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
             "`fairyhw dse --config sweep.json --out reports/dse`. Results are cached in "
             "`$FAIRYHW_CACHE/dse/` (default `~/.cache/fairyhw/dse/`) by point, so an extended sweep only runs new points. Points run in a "
             "process pool (`--workers N`); `--scheduler tcp://HOST:8786` sends them to a Dask "
             "distributed cluster instead. Points whose ECP5 LUT count exceeds the LFE5U-85F skip place "
             "and route and are projected at the configured clock.")
    return L
