import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def tiny_llama(seed: int = 0):
    """A tiny LlamaForCausalLM with random weights (hidden 64, 2 layers, GQA, untied lm_head)."""
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(seed)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, vocab_size=128,
                      max_position_embeddings=64, tie_word_embeddings=False)
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    """A tiny LLaMA checkpoint written by the tests themselves (config.json + model.safetensors)."""
    d = tmp_path_factory.mktemp("tiny-llama")
    tiny_llama().save_pretrained(d, safe_serialization=True)
    return str(d)


@pytest.fixture(scope="session")
def smollm2_path():
    """The packaged SmolLM2-135M GGUF; tests that need it skip, with the reason, where it is missing."""
    from fairyhw import FairyError
    from fairyhw.model.checkpoint import smollm2_gguf_path
    try:
        return smollm2_gguf_path()
    except FairyError as e:
        pytest.skip(f"needs the SmolLM2-135M checkpoint: {e}")


@pytest.fixture(scope="session")
def smollm2(smollm2_path):
    from fairyhw.model.checkpoint import load_gguf
    return load_gguf(smollm2_path)


@pytest.fixture(scope="session")
def smollm2_layer_cases(smollm2):
    """SmolLM2 block 0's q_proj and down_proj quantized W2, with int8 activations of two tokens from the
    FairyLinear path: (name, codes uint8 (4, n, m) in the order U0, W0, U1, W1, p, q int8 (2, m), golden
    integer sums int64 (2, 4, n, 4)), for the CPU and GPU kernel tests."""
    from fairyhw.model.layers import FairyLinear
    gen = torch.Generator().manual_seed(5)
    cases = []
    for name in ("model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight"):
        layer = FairyLinear(smollm2.tensors[name].float(), stages=2)
        act = layer.quantize_input(torch.randn(2, layer.in_features, generator=gen))
        codes = torch.stack([c for u, w in zip(layer.u_stages, layer.w_stages) for c in (u.codes, w.codes)])
        ref = layer.integer_sums(act)                       # (B, T, 2, n, 4)
        cases.append((name, codes, act.p, act.q, ref.reshape(2, 4, -1, 4)))
    return cases
