"""Checkpoint loading (HF directory, GGUF) and the quant command line."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from fairyhw import FairyError
from fairyhw.model.checkpoint import linear_weight_names, load_checkpoint
from fairyhw.model.pack import read_memh, unstream_words
from fairyhw.flow.quant import main as quant_main

from tests.conftest import tiny_llama


def test_hf_dir_loads_the_written_model(tiny_llama_dir):
    ck = load_checkpoint(tiny_llama_dir)
    sd = tiny_llama().state_dict()
    assert ck.config["hidden_size"] == 64
    assert all(torch.equal(ck.tensors[k], sd[k]) for k in ck.tensors)
    assert len(linear_weight_names(ck)) == 15


def test_gguf_metadata_walk_matches_the_gguf_reader(tmp_path):
    """The metadata walk behind ``load_gguf`` reads what ``gguf.GGUFReader`` reads: every scalar and
    string (arrays of strings and numbers skipped on the way), each tensor's name, type, shape and bytes."""
    import gguf
    from fairyhw.model.checkpoint import _read_gguf
    path = tmp_path / "m.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_uint32("llama.block_count", 3)
    w.add_array("tokenizer.ggml.tokens", ["a", "bé", "", "long" * 50])
    w.add_float32("llama.rope.freq_base", 1e4)
    w.add_array("tokenizer.ggml.token_type", [1, 2, 3])
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.add_int64("x.int64", -5)
    w.add_string("x.string", "né")
    g = np.random.default_rng(0)
    w.add_tensor("a.weight", g.standard_normal((3, 32)).astype(np.float32))
    w.add_tensor("b.weight", g.standard_normal((2, 64)).astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    fields, tensors = _read_gguf(str(path))
    r = gguf.GGUFReader(str(path))
    for key, f in r.fields.items():
        if key.startswith("GGUF."):
            continue
        want = None if f.types[0] == gguf.GGUFValueType.ARRAY else f.contents()
        assert fields[key] == want, key
    assert set(fields) == {k for k in r.fields if not k.startswith("GGUF.")}
    assert len(tensors) == len(r.tensors) == 2
    for a, b in zip(tensors, r.tensors):
        assert (a.name, a.tensor_type, a.shape) == (b.name, b.tensor_type, tuple(int(d) for d in b.shape))
        assert a.data.tobytes() == np.asarray(b.data).tobytes()


def test_smollm2_gguf_matches_transformers_loader(smollm2, smollm2_path):
    """Our GGUF loader (dequantize + q/k un-permute) gives exactly transformers' tensors."""
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(os.path.dirname(smollm2_path),
                                             gguf_file=os.path.basename(smollm2_path),
                                             dtype=torch.float32)
    sd = m.state_dict()
    assert len(smollm2.tensors) == 272
    for k, t in smollm2.tensors.items():
        assert torch.equal(t, sd[k]), k
    assert smollm2.config["hidden_size"] == 576 and smollm2.config["num_hidden_layers"] == 30
    assert smollm2.tied_lm_head and m.config.tie_word_embeddings
    assert sum(t.numel() for t in smollm2.tensors.values()) == 134_515_008


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fairyhw", "quant", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_quant_cli_tiny_llama(tiny_llama_dir, tmp_path):
    out = tmp_path / "q"
    r = run_cli(tiny_llama_dir, "--stages", "2", "--lanes", "8", "--lane-style", "output", "--out", str(out),
                "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "15 of 15 linear layers quantized (W2)" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    scales = json.loads((out / "scales.json").read_text())
    assert summary["model"]["bits_per_quantized_weight"] == 2.0
    layer = next(x for x in summary["layers"] if x["name"] == "model.layers.0.self_attn.k_proj")
    assert layer["shape"] == [32, 64] and layer["complex_shape"] == [16, 32]
    assert sum(map(sum, layer["code_histogram"]["U"])) == 2 * 16 * 32
    assert 0 < layer["relative_error"] < 1
    assert len(scales[layer["name"]]["W"]) == 2
    # The image reads back to the codes of the golden model.
    from fairyhw.model.layers import quantize_linear_weight
    a = load_checkpoint(tiny_llama_dir).tensors["model.layers.0.self_attn.k_proj.weight"]
    u_st, w_st = quantize_linear_weight(a, 2, name=layer["name"])
    back = unstream_words(read_memh(out / layer["memh"], 8), 8, 16, 32, 2, 2)
    for t in range(2):
        assert torch.equal(back[t][0], u_st[t].codes) and torch.equal(back[t][1], w_st[t].codes)
        assert scales[layer["name"]]["U"][t] == [u_st[t].s_re, u_st[t].s_im]
    # Same command, same bytes.
    out2 = tmp_path / "q2"
    assert run_cli(tiny_llama_dir, "--lanes", "8", "--lane-style", "output", "--out", str(out2),
                   "--no-progress").returncode == 0
    for f in ("summary.json", "scales.json", layer["memh"]):
        assert (out / f).read_bytes() == (out2 / f).read_bytes()


def test_quant_array_layout_reads_back(tiny_llama_dir, tmp_path):
    """The default images follow the array's stream layout (here 2 x 8): they read back to the codes."""
    from fairyhw.model.layers import quantize_linear_weight
    from fairyhw.model.pack import unstream_words_array
    out = tmp_path / "q"
    r = run_cli(tiny_llama_dir, "--rows", "2", "--cols", "8", "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"]["lane_style"] == "array" and summary["lanes"] == 16
    layer = next(x for x in summary["layers"] if x["name"] == "model.layers.0.mlp.down_proj")
    n, m = layer["complex_shape"]
    a = load_checkpoint(tiny_llama_dir).tensors["model.layers.0.mlp.down_proj.weight"]
    u_st, w_st = quantize_linear_weight(a, 2, name=layer["name"])
    back = unstream_words_array(read_memh(out / layer["memh"], 16), 2, 8, n, m, 2, 2)
    for t in range(2):
        assert torch.equal(back[t][0], u_st[t].codes) and torch.equal(back[t][1], w_st[t].codes)


def write_gguf(path, tensors, arch="llama"):
    import gguf
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(1)
    w.add_embedding_length(8)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    for name, arr, raw in tensors:
        w.add_tensor(name, arr, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_gguf_unsupported_tensor_type(tmp_path):
    import gguf
    p = tmp_path / "bad.gguf"
    write_gguf(p, [("token_embd.weight", np.ones((4, 8), np.float32), None),
                   ("blk.0.attn_q.weight", np.ones((8, 8), np.int8), gguf.GGMLQuantizationType.I8)])
    with pytest.raises(FairyError, match=r"^bad.gguf: tensor blk.0.attn_q.weight has GGUF type I8, "
                                         r"which is not supported \(supported: F32, .*\)$"):
        load_checkpoint(str(p))


def test_gguf_nan_weights(tmp_path):
    p = tmp_path / "nan.gguf"
    a = np.ones((8, 8), np.float32)
    a[3, 4] = np.nan
    write_gguf(p, [("blk.0.attn_v.weight", a, None)])
    with pytest.raises(FairyError, match=r"^nan.gguf: tensor blk.0.attn_v.weight holds NaN or Inf values$"):
        load_checkpoint(str(p))


def make_bad_inputs(base, tiny_llama_dir, smollm2_path):
    bad = {}
    bad["missing"] = (str(base / "nope"), r"no such file or directory")
    d = base / "noconfig"
    d.mkdir()
    bad["noconfig"] = (str(d), r"no config.json, expected an HF model directory")
    d = base / "badconfig"
    d.mkdir()
    (d / "config.json").write_text("{not json")
    bad["badconfig"] = (str(d), r"malformed config.json")
    d = base / "badtensors"
    shutil.copytree(tiny_llama_dir, d)
    (d / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00garbage!")
    bad["badtensors"] = (str(d), r"malformed safetensors file")
    d = base / "nantensors"
    shutil.copytree(tiny_llama_dir, d)
    from safetensors.torch import load_file, save_file
    sd = load_file(d / "model.safetensors")
    sd["model.layers.1.mlp.up_proj.weight"][0, 0] = float("inf")
    save_file(sd, d / "model.safetensors", metadata={"format": "pt"})
    bad["nantensors"] = (str(d), r"tensor model.layers.1.mlp.up_proj.weight holds NaN or Inf values")
    p = base / "trunc.gguf"
    p.write_bytes(open(smollm2_path, "rb").read(5000))
    bad["truncated gguf"] = (str(p), r"trunc.gguf: malformed GGUF file")
    p = base / "text.bin"
    p.write_text("hello")
    bad["not a checkpoint"] = (str(p), r"not a checkpoint \(expected an HF directory or a GGUF file\)")
    return bad


def test_cli_bad_checkpoints_exit_2_without_output(tmp_path, tiny_llama_dir, smollm2_path):
    for what, (path, msg) in make_bad_inputs(tmp_path, tiny_llama_dir, smollm2_path).items():
        out = tmp_path / f"out-{what.replace(' ', '-')}"
        r = run_cli(path, "--out", str(out), "--no-progress")
        assert r.returncode == 2, (what, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (what, r.stderr)
        assert __import__("re").search(msg, lines[0]), (what, lines[0])
        assert not out.exists(), what
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".fairyhw")) == []


def test_cli_odd_dimension_layers_stay_real(tmp_path):
    from safetensors.torch import save_file
    d = tmp_path / "odd"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "custom"}))
    save_file({"model.layers.0.mlp.up_proj.weight": torch.randn(6, 4),
               "model.layers.0.mlp.down_proj.weight": torch.randn(4, 5)}, d / "model.safetensors")
    out = tmp_path / "q"
    assert quant_main([str(d), "--out", str(out), "--no-progress", "--stages", "1"]) == 0
    layers = {x["name"]: x for x in json.loads((out / "summary.json").read_text())["layers"]}
    assert layers["model.layers.0.mlp.down_proj"] == {
        "name": "model.layers.0.mlp.down_proj", "shape": [4, 5], "tied_to_embedding": False,
        "quantized": False, "reason": "odd dimension"}
    assert layers["model.layers.0.mlp.up_proj"]["quantized"]


@pytest.mark.parametrize("args, msg", [
    (["--stages", "0"], "argument --stages: stages must be from 1 to 4, not 0"),
    (["--stages", "x"], "argument --stages: stages must be an integer, not 'x'"),
    (["--lanes", "0"], "argument --lanes: lanes must be from 1 to 65536, not 0"),
    (["--lanes", "-3"], "argument --lanes: lanes must be from 1 to 65536, not -3"),
    (["--lanes", "1000000000000"], "argument --lanes: lanes must be from 1 to 65536, not 1000000000000"),
    (["--scales", "bad"], "argument --scales: invalid choice: 'bad'"),
])
def test_cli_bad_options(tmp_path, tiny_llama_dir, args, msg):
    r = run_cli(tiny_llama_dir, "--out", str(tmp_path / "o"), *args)
    assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_cli_existing_output_and_unwritable_parent(tmp_path, tiny_llama_dir):
    (tmp_path / "o").mkdir()
    r = run_cli(tiny_llama_dir, "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and r.stderr.strip() == \
        f"error: --out: {tmp_path / 'o'} exists (use --force to replace a directory fairyhw wrote)"
    r = run_cli(tiny_llama_dir, "--out", str(tmp_path / "missing" / "o"))
    assert r.returncode == 2 and \
        r.stderr.strip() == f"error: --out: the folder {tmp_path / 'missing'} does not exist"


def test_llama_shapes_follow_the_configs_head_dim():
    """The shape check reads the projections' shapes from ``linear_shapes`` (one statement of them),
    with the config's own ``head_dim`` where it is not hidden / heads; a wrong shape names the tensor."""
    import pytest
    import torch
    from fairyhw import FairyError
    from fairyhw.model.checkpoint import Checkpoint, check_llama_shapes
    cfg = {"hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
           "intermediate_size": 96, "num_hidden_layers": 1, "vocab_size": 10}
    shapes = {"self_attn.q_proj": (128, 64), "self_attn.k_proj": (64, 64), "self_attn.v_proj": (64, 64),
              "self_attn.o_proj": (64, 128), "mlp.gate_proj": (96, 64), "mlp.up_proj": (96, 64),
              "mlp.down_proj": (64, 96), "input_layernorm": (64,), "post_attention_layernorm": (64,)}
    tensors = {f"model.layers.0.{k}.weight": torch.zeros(v) for k, v in shapes.items()}
    tensors.update({"model.norm.weight": torch.zeros(64), "model.embed_tokens.weight": torch.zeros(10, 64)})
    check_llama_shapes(Checkpoint("m", cfg, tensors))
    tensors["model.layers.0.self_attn.o_proj.weight"] = torch.zeros(64, 64)
    with pytest.raises(FairyError, match=r"o_proj.weight has shape \(64, 64\).*gives \(64, 128\)"):
        check_llama_shapes(Checkpoint("m", cfg, tensors))
    with pytest.raises(FairyError, match="head_dim is 'x', expected a positive integer"):
        check_llama_shapes(Checkpoint("m", {**cfg, "head_dim": "x"}, tensors))
