"""The workload: LLaMA inference as operators on shape-only tensors."""

from __future__ import annotations
from dataclasses import dataclass
from ..model.llama import LLAMA2_7B, LlamaConfig, linear_shapes
from .hardware import HardwareConfig


MODELS = {"llama2-7b": LLAMA2_7B}


# ---------------------------------------------------------------------------------------------------
# Workload

@dataclass(frozen=True)
class Op:
    """One operator of a token's (or a prompt's) work, on shapes only."""

    name: str
    kind: str                      # "linear", "attention", "vector", "embedding"
    count: int = 1                 # times per forward (per layer ops: layers)
    k: int = 0                     # linear: complex input length
    rows: int = 0                  # linear: complex output rows
    tokens: int = 1                # activation vectors through this op
    weight_bytes: float = 0.0      # per forward, all counts included
    kv_bytes: float = 0.0
    vector_ops: float = 0.0
    act_bytes: float = 0.0


def _linear_ops(cfg: LlamaConfig, tokens: int, stages: int, lm_head: str, matrices: int = 2) -> list[Op]:
    ops = []
    for s in linear_shapes(cfg):
        if s.name == "lm_head" and lm_head == "fp16":
            ops.append(Op("lm_head (fp16)", "vector", 1, tokens=tokens, weight_bytes=2 * s.params,
                          vector_ops=2 * s.params * tokens))
            continue
        # T stages x (U, W) x (out/2 x in/2) codes x 2 bits = T bits per real weight (half that with
        # W only, Fairy±i); the engine re-reads the weights for every token
        wb = s.params * stages * matrices / 16 * s.count * tokens
        ops.append(Op(s.name, "linear", s.count, k=s.in_features // 2, rows=s.out_features // 2,
                      tokens=tokens, weight_bytes=wb, act_bytes=(s.in_features + s.out_features) *
                      s.count * tokens))
    return ops


def _block_vector_ops(cfg: LlamaConfig, tokens: int) -> list[Op]:
    h, i, L = cfg.hidden, cfg.intermediate, cfg.layers
    kv = cfg.kv_heads * cfg.head_dim
    return [
        Op("rmsnorm", "vector", 2 * L + 1, tokens=tokens, vector_ops=4 * h * (2 * L + 1) * tokens),
        Op("rope", "vector", L, tokens=tokens, vector_ops=3 * (h + kv) * L * tokens),
        Op("silu*up", "vector", L, tokens=tokens, vector_ops=(10 + 1) * i * L * tokens),
        Op("residual", "vector", 2 * L, tokens=tokens, vector_ops=2 * h * L * tokens),
        Op("embedding", "embedding", 1, tokens=tokens, weight_bytes=2 * h * tokens),
    ]


def decode_ops(cfg: LlamaConfig = LLAMA2_7B, *, context: int = 0, batch: int = 1, stages: int = 2,
               lm_head: str = "quantized", kv: str = "fp16", matrices: int = 2) -> list[Op]:
    """One decoded token per sequence at context length ``context``, ``batch`` sequences; ``matrices``
    per stage (2: Fairy2i's U and W, 1: W only)."""
    kvb = {"fp16": 2, "int8": 1}[kv]
    kvdim = cfg.kv_heads * cfg.head_dim
    L = cfg.layers
    pos = context + 1                          # the new token attends to itself too
    att = Op("attention", "attention", L, tokens=batch,
             kv_bytes=2 * kvdim * kvb * L * batch * (pos - 1) + 2 * kvdim * kvb * L * batch,
             vector_ops=(2 * 2 * cfg.hidden * pos + 5 * cfg.heads * pos) * L * batch)
    return _linear_ops(cfg, batch, stages, lm_head, matrices) + [att] + _block_vector_ops(cfg, batch)


def prefill_ops(cfg: LlamaConfig = LLAMA2_7B, *, prompt: int = 128, stages: int = 2,
                lm_head: str = "quantized", kv: str = "fp16", matrices: int = 2) -> list[Op]:
    """A prompt of ``prompt`` tokens (causal attention over the prompt), one sequence."""
    kvb = {"fp16": 2, "int8": 1}[kv]
    kvdim = cfg.kv_heads * cfg.head_dim
    L = cfg.layers
    pairs = prompt * (prompt + 1) / 2
    att = Op("attention", "attention", L, tokens=prompt, kv_bytes=2 * kvdim * kvb * L * prompt,
             vector_ops=(2 * 2 * cfg.hidden * pairs + 5 * cfg.heads * pairs) * L)
    return _linear_ops(cfg, prompt, stages, lm_head, matrices) + [att] + _block_vector_ops(cfg, prompt)


def workload(hw: HardwareConfig, phase: str = "decode", model: LlamaConfig = LLAMA2_7B, **kw) -> list[Op]:
    """The operators of ``phase`` for the engine of ``hw``: its stages and matrices per stage."""
    fn = decode_ops if phase == "decode" else prefill_ops
    return fn(model, stages=hw.engine.stages, matrices=len(hw.engine.matrices), **kw)
