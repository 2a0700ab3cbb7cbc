"""LLaMA-architecture shapes as data: LLaMA-2 7B and any HF LLaMA config."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LlamaConfig", "LinearShape", "LLAMA2_7B", "linear_shapes", "block_module", "parameter_count",
           "weight_bytes_per_token"]


@dataclass(frozen=True)
class LlamaConfig:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    rms_eps: float = 1e-5
    rope_theta: float = 1e4
    head_size: int = 0                   # the config's head_dim; 0: hidden // heads

    @property
    def head_dim(self) -> int:
        return self.head_size or self.hidden // self.heads

    @classmethod
    def from_hf(cls, cfg: dict) -> "LlamaConfig":
        return cls(hidden=cfg["hidden_size"], intermediate=cfg["intermediate_size"],
                   layers=cfg["num_hidden_layers"], heads=cfg["num_attention_heads"],
                   kv_heads=cfg.get("num_key_value_heads", cfg["num_attention_heads"]),
                   vocab=cfg["vocab_size"], rms_eps=cfg.get("rms_norm_eps", 1e-5),
                   rope_theta=cfg.get("rope_theta", 1e4), head_size=cfg.get("head_dim") or 0)


#: LLaMA-2 7B (Touvron et al. 2023; the HF config of meta-llama/Llama-2-7b-hf).
LLAMA2_7B = LlamaConfig(hidden=4096, intermediate=11008, layers=32, heads=32, kv_heads=32, vocab=32000)


@dataclass(frozen=True)
class LinearShape:
    """A linear layer: real ``out x in``; ``count`` copies in the model (one per block)."""

    name: str
    out_features: int
    in_features: int
    count: int

    @property
    def params(self) -> int:
        return self.out_features * self.in_features


def linear_shapes(cfg: LlamaConfig = LLAMA2_7B, lm_head: bool = True) -> list[LinearShape]:
    """Every linear layer's shape, the per-block ones with ``count = layers`` (the one statement of
    them: the checkpoint checks and the cycle model read it)."""
    h, i = cfg.hidden, cfg.intermediate
    q, kv = cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    out = [LinearShape("q_proj", q, h, cfg.layers), LinearShape("k_proj", kv, h, cfg.layers),
           LinearShape("v_proj", kv, h, cfg.layers), LinearShape("o_proj", h, q, cfg.layers),
           LinearShape("gate_proj", i, h, cfg.layers), LinearShape("up_proj", i, h, cfg.layers),
           LinearShape("down_proj", h, i, cfg.layers)]
    if lm_head:
        out.append(LinearShape("lm_head", cfg.vocab, h, 1))
    return out


def block_module(name: str) -> str:
    """A block's linear layer (a :class:`LinearShape` name) as HF's module path inside the block:
    ``self_attn.q_proj`` ... ``mlp.down_proj``."""
    return f"{'mlp' if name in ('gate_proj', 'up_proj', 'down_proj') else 'self_attn'}.{name}"


def parameter_count(cfg: LlamaConfig = LLAMA2_7B, tied: bool = False) -> int:
    """All parameters: embedding, blocks (linear layers and two RMSNorms each), final norm, lm_head."""
    blocks = sum(s.params * s.count for s in linear_shapes(cfg, lm_head=False))
    norms = 2 * cfg.hidden * cfg.layers + cfg.hidden
    embed = cfg.vocab * cfg.hidden
    return embed + blocks + norms + (0 if tied else embed)


def weight_bytes_per_token(cfg: LlamaConfig = LLAMA2_7B, bits: float = 2.0,
                           lm_head_bits: float | None = None) -> float:
    """Weight bytes streamed per decoded token: every block linear layer and the lm_head once.

    ``lm_head_bits`` defaults to ``bits`` (quantized lm_head); 16 gives an fp16 lm_head. The embedding
    lookup reads one row and is left out, as are the norms.
    """
    blocks = sum(s.params * s.count for s in linear_shapes(cfg, lm_head=False))
    head = cfg.vocab * cfg.hidden
    return (blocks * bits + head * (bits if lm_head_bits is None else lm_head_bits)) / 8
