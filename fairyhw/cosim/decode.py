"""The host side of a whole-model run on the simulated system top: SmolLM2-135M in torch with every
linear layer on a pluggable back end.

The model is the packaged SmolLM2-135M (optionally its first ``blocks`` blocks only) with every linear
layer, the lm_head included, quantized to Fairy2i W2 (:func:`fairyhw.model.layers.convert`). Three
back ends compute a linear layer:

- ``float``: the unquantized model (the reference the quantization is measured against);
- ``int8``: the golden integer path, :meth:`~fairyhw.model.layers.FairyLinear.forward_int8`
  (int8 activations, exact integer sums, rescale);
- ``rtl``: the same int8 activations written to the simulated memory, the layer run on the system
  top from its descriptors, its sums read back and checked ``==`` the golden integer sums, then the
  same rescale. Everything else (embedding, RMSNorm, RoPE, attention and its KV cache, SiLU,
  residuals) is the same torch code in every back end, so the logits of ``rtl`` and ``int8`` are
  equal exactly when every layer's sums are.

:func:`run` does a whole job: lays out every layer's weights in memory once, then feeds the prompt
token by token and decodes greedily, on each back end; the hardware is reached through three
blocking calls (``write``, ``read``, ``run``) that the cocotb bench (:mod:`fairyhw.cosim.bench`)
provides.
"""

from __future__ import annotations

import copy
import inspect
import math
import time
from dataclasses import dataclass

import torch
import torch.nn as nn

from .. import FairyError
from ..hw.config import DESCRIPTOR_BYTES, SystemConfig
from ..hw.host import PAGE, decode_region, descriptor, pack_items, weight_images
from ..hw.streams import act_beats
from ..hw.timing import pass_count, system_cycles
from ..model.layers import FairyLinear, convert
from ..model.pack import stream_words_for

__all__ = ["load_models", "plan", "Placed", "ModelLayout", "run", "perplexity"]


def _align(n: int) -> int:
    return -(-n // PAGE) * PAGE


def load_models(blocks: int | None = None, stages: int = 2):
    """The float SmolLM2-135M, its Fairy2i quantized copy (every linear layer, lm_head included),
    and the tokenizer; ``blocks``: keep the first blocks only."""
    from ..model.vectors import load_smollm2
    model, tok = load_smollm2()
    if blocks is not None:
        n = len(model.model.layers)
        if not 1 <= blocks <= n:
            raise FairyError(f"blocks must be from 1 to {n}, not {blocks}")
        model.model.layers = model.model.layers[:blocks]
        model.config.num_hidden_layers = blocks
    qmodel = convert(copy.deepcopy(model), stages=stages)
    return model, qmodel, tok


class _Switch(nn.Module):
    """A quantized linear layer whose forward goes to the back end of its :class:`_Hub`."""

    def __init__(self, name: str, layer: FairyLinear, hub: "_Hub"):
        super().__init__()
        self.name, self.layer = name, layer
        self._hub = [hub]                   # not a submodule

    def forward(self, x):
        return self._hub[0].linear(self.name, self.layer, x)


class _Hub:
    """The back end every :class:`_Switch` calls."""

    def __init__(self):
        self.backend = "int8"
        self.rtl = None

    def linear(self, name, layer, x):
        if self.backend == "int8":
            return layer.forward_int8(x).to(x.dtype)
        return self.rtl(name, layer, x)


def _switch_model(qmodel) -> tuple[_Hub, list[str]]:
    """Replace each FairyLinear of ``qmodel`` by a :class:`_Switch`; returns the hub and the layer
    names in the model's order."""
    hub, names = _Hub(), []
    for name, mod in list(qmodel.named_modules()):
        if isinstance(mod, FairyLinear):
            parent_name, _, child = name.rpartition(".")
            parent = qmodel.get_submodule(parent_name) if parent_name else qmodel
            setattr(parent, child, _Switch(name, mod, hub))
            names.append(name)
    return hub, names


@dataclass
class Placed:
    """A linear layer in memory: its complex shape, the descriptors of its pieces (a layer with more
    rows than the engine takes runs as several), where its activations go and its results come."""
    name: str
    k: int
    rows: int
    desc_addr: int
    pieces: list            # [(first row, end row, weights, weight stride, results, result bytes)]
    act: int


def plan(cfg: SystemConfig, shapes) -> tuple[dict, int]:
    """Where every linear layer goes in memory: ``shapes`` ``[(name, rows, k)]`` (complex) in run
    order; returns ``({name: Placed}, end)``. Descriptors first (a layer's pieces contiguous, a piece
    at most ``max_out`` rows), then each layer's activations, then per piece its weight regions (one
    per weight port, ``wgt_stride`` apart) and its result region, every region 4 KB aligned."""
    e = cfg.engine
    n_desc = 0
    cuts = {}
    for name, rows, k in shapes:
        if k > e.max_in:
            raise FairyError(f"{name}: k = {k} complex inputs is more than the engine's max_in {e.max_in}")
        c = list(range(0, rows, e.max_out)) + [rows]
        cuts[name] = list(zip(c[:-1], c[1:]))
        n_desc += len(cuts[name])
    at = _align(n_desc * DESCRIPTOR_BYTES)
    d_at, places = 0, {}
    for name, rows, k in shapes:
        act = at
        at = _align(at + cfg.act_memory_words(k) * cfg.word_bytes)
        place = Placed(name, k, rows, d_at, [], act)
        for r0, r1 in cuts[name]:
            wbytes = pass_count(e, r1 - r0) * cfg.pass_memory_words(k) * cfg.word_bytes
            wgt, stride_p = at, _align(wbytes)
            at = wgt + stride_p * cfg.weight_ports
            res_bytes = cfg.result_memory_words(r1 - r0) * cfg.word_bytes
            place.pieces.append((r0, r1, wgt, stride_p, at, res_bytes))
            at = _align(at + res_bytes)
        d_at += DESCRIPTOR_BYTES * len(cuts[name])
        places[name] = place
    return places, at


class ModelLayout:
    """Every linear layer in memory (:func:`plan`): ``images`` ``{address: bytes}`` holds the
    descriptors and weights (written once); activations are written per token."""

    def __init__(self, cfg: SystemConfig, layers: list[tuple[str, FairyLinear]]):
        e = cfg.engine
        self.config = cfg
        shapes = [(n, l.out_features // 2, l.in_features // 2) for n, l in layers]
        self.places, self.end = plan(cfg, shapes)
        self.images = {}
        for name, layer in layers:
            place = self.places[name]
            descs = []
            for r0, r1, wgt, stride, res, _ in place.pieces:
                mats = [[u.codes[r0:r1], w.codes[r0:r1]] for u, w in zip(layer.u_stages, layer.w_stages)]
                ports = weight_images(cfg, stream_words_for(mats, e), place.k)
                assert max(len(b) for b in ports) <= stride, (name, stride)
                for p, blob in enumerate(ports):
                    self.images[wgt + p * stride] = blob
                descs.append(descriptor(place.k, r1 - r0, place.act, wgt, stride, res))
            self.images[place.desc_addr] = b"".join(descs)


def _rtl_backend(lay: ModelLayout, hw, record: list, timing):
    """The ``rtl`` back end: a linear layer on the hardware through ``hw`` (see :func:`run`)."""
    cfg = lay.config
    predicted_of = {}

    def linear(name, layer, x):
        act = layer.quantize_input(x)
        p, q = act.p.reshape(-1, act.p.shape[-1]), act.q.reshape(-1, act.q.shape[-1])
        if p.shape[0] != 1:
            raise FairyError("the rtl back end runs one token at a time")
        place = lay.places[name]
        hw.write(place.act, pack_items(act_beats(cfg.engine, p[0], q[0]), cfg.act_bits, cfg.data_width))
        t0 = time.perf_counter()
        st = hw.run(place.desc_addr, len(place.pieces))
        wall = time.perf_counter() - t0
        if not st["done"] or st["error"]:
            raise FairyError(f"{name}: the system top stopped with status {st}")
        parts = [decode_region(cfg, hw.read(res, nbytes), r1 - r0) for r0, r1, _, _, res, nbytes in place.pieces]
        sums = torch.cat(parts, dim=2)
        golden = layer.integer_sums(act).reshape(sums.shape)
        equal = bool(torch.equal(sums, golden))
        if name not in predicted_of:        # a layer's prediction depends on its shape alone
            predicted_of[name] = system_cycles(cfg, [(place.k, r1 - r0) for r0, r1, *_ in place.pieces],
                                               **timing)["cycles"]
        predicted = predicted_of[name]
        record.append({"layer": name, "k": place.k, "rows": place.rows, "cycles": st["cycles"],
                       "stall": st["stall"], "predicted": predicted, "equal": equal, "wall_s": wall})
        if not equal:
            bad = int((sums != golden).sum())
            raise FairyError(f"{name}: {bad} of {sums.numel()} sums differ from the golden integer path")
        y = layer.rescale(sums.reshape(golden.shape).unsqueeze(0), act)
        if layer.bias is not None:
            y = y + layer.bias.double()
        return y.reshape(*x.shape[:-1], layer.out_features).to(x.dtype)
    return linear


def _greedy(model, prompt_ids: list[int], new: int, on_token=None):
    """Feed ``prompt_ids`` token by token, then decode ``new`` tokens greedily: (the generated ids,
    the logits of every step)."""
    from transformers import DynamicCache
    cache = DynamicCache()
    # the cache's keyword: ``cache`` in transformers 5.x, ``past_key_values`` before
    kw = "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"
    ids, logits, out = list(prompt_ids), [], []
    step_in = ids[0]
    steps = len(prompt_ids) + new - 1
    with torch.no_grad():
        for s in range(steps):
            r = model(input_ids=torch.tensor([[step_in]]), use_cache=True, **{kw: cache})
            cache = getattr(r, kw, None) or r.past_key_values
            lg = r.logits[0, -1].detach().clone()
            logits.append(lg)
            if s + 1 < len(prompt_ids):
                step_in = prompt_ids[s + 1]
            else:
                step_in = int(lg.argmax())
                out.append(step_in)
            if on_token:
                on_token(s)
    return out, logits


def perplexity(model, ids: list[int]) -> float:
    """exp of the mean next-token negative log-likelihood of ``ids`` (one forward pass)."""
    with torch.no_grad():
        lg = model(input_ids=torch.tensor([ids])).logits[0, :-1].double()
    nll = torch.nn.functional.cross_entropy(lg, torch.tensor(ids[1:]))
    return float(math.exp(float(nll)))


def run(job: dict, hw, log=print) -> dict:
    """A whole job (see the module). ``job``: ``prompt``, ``tokens`` (new tokens), ``blocks`` (None:
    all), ``config`` (a SystemConfig's JSON), ``memory`` (``bytes_per_cycle``, ``latency``,
    ``outstanding``), ``text`` (for the perplexities). ``hw``: ``write(addr, bytes)``,
    ``read(addr, nbytes) -> bytes`` and ``run(desc_addr, count) -> status`` (the driver's
    :meth:`~fairyhw.hw.host.Driver.status`), all blocking."""
    from tqdm import tqdm
    torch.manual_seed(0)
    cfg = SystemConfig.from_json(job["config"])
    t0 = time.perf_counter()
    model, qmodel, tok = load_models(job.get("blocks"))
    hub, names = _switch_model(qmodel)
    layers = [(n, qmodel.get_submodule(n).layer) for n in names]
    log(f"quantized {len(layers)} linear layers (Fairy2i W2) in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    shapes = [tuple(x) for x in job["shapes"]]
    mine = [(n, l.out_features // 2, l.in_features // 2) for n, l in layers]
    if mine != shapes:
        raise FairyError(f"the model's linear layers {mine[:3]}... are not the planned {shapes[:3]}...")
    lay = ModelLayout(cfg, layers)
    total = sum(len(b) for b in lay.images.values())
    with tqdm(total=total, unit="B", unit_scale=True, desc="weights into memory", leave=False) as bar:
        for addr, blob in lay.images.items():
            hw.write(addr, blob)
            bar.update(len(blob))
    log(f"laid out {total / 1e6:.1f} MB of weights and descriptors in {time.perf_counter() - t0:.1f} s")

    prompt_ids = tok(job["prompt"]).input_ids
    if not prompt_ids:
        raise FairyError("the prompt has no tokens")
    steps = len(prompt_ids) + job["tokens"] - 1
    timing = {k: job["memory"][k] for k in ("bytes_per_cycle", "latency", "outstanding")}
    out = {"prompt": job["prompt"], "prompt_ids": prompt_ids, "new_tokens": job["tokens"],
           "blocks": len(qmodel.model.layers), "linear_layers": len(layers),
           "descriptors": sum(len(p.pieces) for p in lay.places.values()),
           "memory_bytes": lay.end}

    hub.backend = "int8"
    ids_int8, logits_int8 = _greedy(qmodel, prompt_ids, job["tokens"])
    ids_float, _ = _greedy(model, prompt_ids, job["tokens"])

    record = []
    hub.backend, hub.rtl = "rtl", _rtl_backend(lay, hw, record, timing)
    per_token = []
    with tqdm(total=steps * len(layers), desc="layers on the RTL", unit="layer") as bar:
        def counted(name, layer, x, inner=hub.rtl):
            y = inner(name, layer, x)
            bar.update(1)
            return y
        hub.rtl = counted
        t0 = time.perf_counter()
        marks = [0]

        def on_token(s):
            n = len(record)
            rec = record[marks[-1]:n]
            marks.append(n)
            per_token.append({"step": s, "cycles": sum(r["cycles"] for r in rec),
                              "predicted": sum(r["predicted"] for r in rec),
                              "wall_s": sum(r["wall_s"] for r in rec)})
            bar.set_postfix(token=f"{s + 1}/{steps}")
        ids_rtl, logits_rtl = _greedy(qmodel, prompt_ids, job["tokens"], on_token)
        wall = time.perf_counter() - t0
    logits_equal = [bool(torch.equal(a, b)) for a, b in zip(logits_rtl, logits_int8)]
    sim_cycles = sum(r["cycles"] for r in record)
    sim_wall = sum(r["wall_s"] for r in record)
    last = record[marks[-2]:marks[-1]]
    out.update({
        "tokens": {"rtl": ids_rtl, "int8": ids_int8, "float": ids_float},
        "text": {k: tok.decode(v) for k, v in (("rtl", ids_rtl), ("int8", ids_int8), ("float", ids_float))},
        "checks": {"layers_run": len(record), "layers_equal": sum(r["equal"] for r in record),
                   "logits_equal_steps": sum(logits_equal), "steps": steps,
                   "tokens_equal": ids_rtl == ids_int8},
        "per_token": per_token,
        "last_step_layers": [{k: r[k] for k in ("layer", "k", "rows", "cycles", "predicted", "stall")}
                             for r in last],
        "simulation": {"cycles": sim_cycles, "seconds_in_runs": sim_wall,
                       "cycles_per_second": sim_cycles / sim_wall if sim_wall else 0.0,
                       "wall_s_rtl_decode": wall},
    })
    text_ids = tok(job["text"]).input_ids
    hub.backend = "int8"
    out["perplexity"] = {"text": job["text"], "tokens": len(text_ids), "whole_model": job.get("blocks") is None,
                         "float": perplexity(model, text_ids), "int8": perplexity(qmodel, text_ids)}
    return out
