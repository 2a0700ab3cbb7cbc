"""The report of a ``fairyhw run``: markdown, JSON (deterministic: no wall-clock figures) with the
wall-clock figures in ``NAME.timing.json``, and a plot of each layer's measured and predicted cycles."""

from __future__ import annotations

import json

from ..outputs import TIMING_SUFFIX, check_finite, dumps_json

__all__ = ["summarize", "write_report"]


def _fmt(n) -> str:
    return f"{n:,}"


def summarize(res: dict, timings: dict) -> str:
    """A few lines for the terminal."""
    c = res["checks"]
    sim = res["simulation"]
    steps = c["steps"]
    lines = [
        f"tokens: rtl {res['tokens']['rtl']} | golden int8 {res['tokens']['int8']} | float {res['tokens']['float']}",
        f"text:   rtl {res['text']['rtl']!r} | golden int8 {res['text']['int8']!r} | float {res['text']['float']!r}",
        f"checks: {c['layers_equal']} of {c['layers_run']} layer runs == the golden integer sums; logits "
        f"equal at {c['logits_equal_steps']} of {steps} steps; tokens {'equal' if c['tokens_equal'] else 'DIFFER'}",
        f"hardware: {_fmt(res['per_token'][-1]['cycles'])} cycles a decode step (predicted "
        f"{_fmt(res['per_token'][-1]['predicted'])}); simulated {_fmt(sim['cycles'])} cycles at "
        f"{sim['cycles_per_second']:,.0f} cycles/s",
        f"wall clock: {timings['total_s']} s in all (build {timings['build_s']} s, simulation "
        f"{timings['simulation_s']} s, {sim['wall_s_rtl_decode'] / steps:.1f} s a token on the RTL)",
        f"perplexity on a {res['perplexity']['tokens']}-token text: float {res['perplexity']['float']:.4g}, "
        f"W2 int8 {res['perplexity']['int8']:.4g}"
        + ("" if res["perplexity"]["whole_model"] else " (a truncated model: not a quality figure)"),
    ]
    return "\n".join(lines)


def _markdown(res: dict) -> str:
    c, sim = res["checks"], res["simulation"]
    cfg, mem = res["config"], res["memory"]
    e = cfg["engine"]
    steps = c["steps"]
    last = res["last_step_layers"]
    tok = res["per_token"]
    mhz = res["clock_mhz"]
    cyc = tok[-1]["cycles"]
    out = [
        "# SmolLM2-135M decoded on the simulated RTL",
        "",
        "Written by `fairyhw run smollm2` (see docs/run.md). Every linear layer (q, k, v, o, gate, up, down of "
        f"{res['blocks']} block{'s' if res['blocks'] > 1 else ''} and the lm_head: {res['linear_layers']} layers, "
        f"{res['descriptors']} descriptors) ran on the generated system top in Verilator, its weights laid out "
        "once in the simulated memory; embedding, RMSNorm, RoPE, attention with its KV cache, SiLU and "
        "residuals ran in torch on the host. The prompt ran token by token, then tokens were decoded greedily.",
        "",
        f"- Design: {e['rows']} x {e['cols']} array ({e['lanes']} complex MACs a cycle), Fairy2i W2, "
        f"{cfg['data_width']}-bit memory, {cfg['weight_ports']} weight port(s), bursts of {cfg['max_burst']}, "
        f"{cfg['outstanding']} outstanding.",
        f"- Memory model: {mem['bytes_per_cycle']:g} bytes a cycle per read port, read latency {mem['latency']} "
        f"cycles, {mem['outstanding']} bursts in flight, {mem['words'] * cfg['data_width'] // 8 / 2**20:.0f} MiB.",
        f"- Prompt: {res['prompt']!r} ({len(res['prompt_ids'])} tokens), {res['new_tokens']} new token(s): "
        f"{steps} decode steps on the RTL.",
        "",
        "## Checks",
        "",
        f"- Integer sums: {c['layers_equal']} of {c['layers_run']} layer runs `==` the golden integer path "
        "(`FairyLinear.integer_sums` of the same int8 activations).",
        f"- Logits: `torch.equal` to the golden int8 path's at {c['logits_equal_steps']} of {steps} steps.",
        f"- Greedy tokens: {'the same' if c['tokens_equal'] else 'DIFFERENT'} on the RTL and the golden int8 path.",
        "",
        "| path | tokens | text |",
        "|---|---|---|",
    ]
    for k, name in (("rtl", "RTL (simulated system top)"), ("int8", "golden int8 (torch)"),
                    ("float", "float SmolLM2-135M")):
        out.append(f"| {name} | {res['tokens'][k]} | {json.dumps(res['text'][k])} |")
    ppl = res["perplexity"]
    out += [
        "",
        (f"Post-training W2 quantization of this small model is far from the float model: on a "
         f"{ppl['tokens']}-token English text its perplexity is {ppl['int8']:.1f} against the float "
         f"model's {ppl['float']:.1f} (the same forward, every linear layer through the golden int8 path). "
         "Fairy2i recovers accuracy with quantization-aware training, which fairyhw does not do; the claim "
         "here is that the hardware computes the quantized model exactly." if ppl["whole_model"] else
         f"This run kept the first {res['blocks']} block(s) only: a truncated model, whose perplexities "
         f"(float {ppl['float']:.3g}, W2 int8 {ppl['int8']:.3g} on a {ppl['tokens']}-token text) say nothing "
         "about the model's quality; the claim is that the hardware computes it exactly."),
        "",
        "## Cycles",
        "",
        f"A decode step (the last one) took **{_fmt(cyc)} cycles** on the system top; the cycle model "
        f"(`fairyhw.hw.timing.system_cycles`, each layer a run of the system top, from its start to idle) predicts "
        f"{_fmt(tok[-1]['predicted'])} ({(tok[-1]['predicted'] - cyc) / cyc * 100:+.2f}%). At {mhz:g} MHz (`--clock-mhz`: an "
        f"assumption, not a placed clock) that is {cyc / mhz / 1e3:.2f} ms a token ({mhz * 1e6 / cyc:.1f} "
        "tokens/s) for the linear layers alone, with the host's work between layers left out."
        + (f" At the system top's placed clock ({res['placed']['mhz']:.1f} MHz on an ECP5-85, "
           f"{res['placed'].get('how', 'the lowest of its seeds')}, `{res['placed']['source']}`) it is {cyc / res['placed']['mhz'] / 1e3:.2f} ms "
           f"({res['placed']['mhz'] * 1e6 / cyc:.1f} tokens/s)." if res.get("placed") else ""),
        "",
        "| step | cycles | predicted | error |",
        "|---|---|---|---|",
    ]
    for t in tok:
        out.append(f"| {t['step']} | {_fmt(t['cycles'])} | {_fmt(t['predicted'])} | "
                   f"{(t['predicted'] - t['cycles']) / t['cycles'] * 100:+.2f}% |")
    worst = max(abs(r["predicted"] - r["cycles"]) / r["cycles"] for r in last)
    exact = sum(r["predicted"] == r["cycles"] for r in last)
    out += [
        "",
        f"Per layer of the last step: {exact} of {len(last)} predictions exact, the worst "
        f"{worst * 100:.2f}% off (plot: `{res.get('plot', 'NAME.png')}`).",
        "",
        "| layer | k | rows | cycles | predicted | stall |",
        "|---|---|---|---|---|---|",
    ]
    for r in last:
        out.append(f"| {r['layer']} | {r['k']} | {r['rows']} | {_fmt(r['cycles'])} | {_fmt(r['predicted'])} | "
                   f"{_fmt(r['stall'])} |")
    out += [
        "",
        "## Simulation speed",
        "",
        f"{_fmt(sim['cycles'])} cycles simulated (the memory in Verilog, Python only between layers). "
        f"The run's timings (cycles a second, wall clock a token, the Verilator build) are kept apart "
        f"from this report, in the `.timing.json` file beside it, so that the report is the same from "
        f"run to run.",
        "",
    ]
    return "\n".join(out)


def _plot(res: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    last = res["last_step_layers"]
    x = range(len(last))
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(x, [r["cycles"] for r in last], "o", ms=4, label="measured (co-simulation)")
    ax.plot(x, [r["predicted"] for r in last], "x", ms=4, label="predicted (system_cycles)")
    ax.set_yscale("log")
    ax.set_xlabel("linear layer of the decode step, in order")
    ax.set_ylabel("cycles")
    ax.set_title("SmolLM2-135M decode step on the simulated system top")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def write_report(res: dict, timings: dict, out, paths: dict) -> None:
    """Write the report's files through ``out`` (an :class:`~fairyhw.outputs.Outputs`)."""
    import os
    res = dict(res)
    res["plot"] = os.path.basename(paths[".png"])
    det = {k: v for k, v in res.items() if k != "simulation"}
    det["simulation"] = {"cycles": res["simulation"]["cycles"]}
    det["per_token"] = [{k: v for k, v in t.items() if k != "wall_s"} for t in res["per_token"]]
    check_finite(det, "the run's result")
    out.write_text(paths[".json"], dumps_json(det, indent=1) + "\n")
    out.write_text(paths[".md"], _markdown(res))
    _plot(res, out.path(paths[".png"]))
    out.write_text(paths[TIMING_SUFFIX], dumps_json({**timings, **res["simulation"]}, indent=1) + "\n")
