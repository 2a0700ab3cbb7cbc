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
    from fairyhw.checkpoint import smollm2_gguf_path
    return smollm2_gguf_path()


@pytest.fixture(scope="session")
def smollm2(smollm2_path):
    from fairyhw.checkpoint import load_gguf
    return load_gguf(smollm2_path)
