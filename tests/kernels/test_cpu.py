"""The C kernels' integer sums equal the golden path bit for bit; build path and bad inputs."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from fairyhw import FairyError
from fairyhw.model import golden as g
from fairyhw.kernels.cpu import kernel as cpu
from fairyhw.model.pack import pack_codes

VARIANTS = pytest.mark.parametrize("variant", cpu.variants())


def golden(codes, p, q, conj):
    return torch.stack([g.integer_sums(codes[k], p, q, conj=c) for k, c in enumerate(conj)], dim=1)


@VARIANTS
@pytest.mark.parametrize("n, m, batch", [(1, 1, 1), (17, 33, 2), (3, 255, 1), (5, 256, 3), (4, 257, 1),
                                         (300, 200, 1), (64, 1000, 5), (9, 2048, 1)])
def test_cpu_sums_random(variant, n, m, batch):
    gen = torch.Generator().manual_seed(n * m + batch)
    codes = torch.randint(0, 4, (4, n, m), dtype=torch.uint8, generator=gen)
    p = torch.randint(-128, 128, (batch, m), dtype=torch.int8, generator=gen)
    q = torch.randint(-128, 128, (batch, m), dtype=torch.int8, generator=gen)
    conj = [False, True, False, True]
    got = cpu.fairy_sums(pack_codes(codes), p, q, variant=variant)
    assert got.dtype == torch.int32 and got.shape == (batch, 4, n, 4)
    assert torch.equal(got.long(), golden(codes, p, q, conj))


@VARIANTS
def test_cpu_sums_extremes_and_flags(variant):
    m = 5504     # LLaMA-2 7B down_proj: the longest input
    codes = torch.tensor([2, 3, 0, 1], dtype=torch.uint8).repeat_interleave(2)[:, None, None].expand(8, 3, m)
    p = torch.full((1, m), -128, dtype=torch.int8)
    q = torch.full((1, m), 127, dtype=torch.int8)
    conj = [True, False, True, True, False, False, True, False]
    got = cpu.fairy_sums(pack_codes(codes), p, q, conj=conj, variant=variant, threads=1)
    ref = golden(codes, p, q, conj)
    assert torch.equal(got.long(), ref) and int(got.abs().max()) == 128 * m


@pytest.mark.parametrize("variant", [v for v in cpu.variants() if v != "lut"])   # lut: 134 MB of tables
def test_cpu_sums_long_rows(variant):
    """Rows past the AVX-512 kernel's 64 KiB chunks of codes (scaled sums folded per chunk), extreme
    activations, a partial last vector."""
    m = 4 * 65536 + 4 * 70 + 3
    gen = torch.Generator().manual_seed(11)
    codes = torch.randint(0, 4, (2, 3, m), dtype=torch.uint8, generator=gen)
    codes[:, 0] = 3                                     # a row of -i: every h bit set
    p = torch.where(torch.rand(1, m, generator=gen) < 0.5, -128, 127).to(torch.int8)
    q = torch.full((1, m), -128, dtype=torch.int8)
    got = cpu.fairy_sums(pack_codes(codes), p, q, conj=[False, True], variant=variant, threads=2)
    assert torch.equal(got.long(), golden(codes, p, q, [False, True]))


@VARIANTS
def test_cpu_sums_smollm2_layer(variant, smollm2_layer_cases):
    """SmolLM2 block 0's q_proj and down_proj, W2, with int8 activations from the FairyLinear path."""
    for name, codes, p, q, ref in smollm2_layer_cases:
        got = cpu.fairy_sums(pack_codes(codes), p, q, variant=variant)
        assert torch.equal(got.long(), ref), name


@pytest.mark.skipif("lut512" not in cpu.variants(), reason="needs AVX-512 VBMI")
@pytest.mark.parametrize("n, m, batch", [(1, 1, 1), (31, 333, 3), (40, 2048, 2)])
def test_cpu_lut_layout_once(n, m, batch):
    """Codes re-laid once by lut_layout, read by the lut512 kernel for several calls, tokens, thread
    counts and conj flags: == the golden path; the re-laid codes are the golden bits, permuted."""
    gen = torch.Generator().manual_seed(n + m)
    codes = torch.randint(0, 4, (3, n, m), dtype=torch.uint8, generator=gen)
    packed = pack_codes(codes)
    laid = cpu.lut_layout(packed)
    assert laid.shape == (3, n, -(-m // 4)) and laid.data.shape == (-(-3 * n // 16), -(-m // 64), 4, 16, 4)
    # the layout holds every code's h bit (low nibbles) and x bit (high nibbles) once, padding 0
    h = (codes >> 1) & 1
    x = h ^ (codes & 1)
    bits = np.unpackbits(laid.data.numpy().reshape(-1, 1), axis=1)        # bit 7 first
    assert int(bits[:, 4:].sum()) == int(h.sum()) and int(bits[:, :4].sum()) == int(x.sum())
    for conj, threads in (([False, True, False], 1), ([True, True, False], 2)):
        p = torch.randint(-128, 128, (batch, m), dtype=torch.int8, generator=gen)
        q = torch.randint(-128, 128, (batch, m), dtype=torch.int8, generator=gen)
        got = cpu.fairy_sums(laid, p, q, conj=conj, threads=threads)
        assert torch.equal(got.long(), golden(codes, p, q, conj))
    with pytest.raises(FairyError, match="lut512 kernel only"):
        cpu.fairy_sums(laid, p, q, variant="avx512")
    with pytest.raises(FairyError, match="do not hold"):
        cpu.fairy_sums(laid, p[:, :-4] if m > 4 else torch.zeros(batch, m + 4, dtype=torch.int8),
                       q[:, :-4] if m > 4 else torch.zeros(batch, m + 4, dtype=torch.int8))


@pytest.mark.parametrize("variant", ["auto", "lut512"] if "lut512" in cpu.variants() else ["auto"])
def test_cpu_sums_into_out(variant):
    """out= is written and returned (the same tensor, reused across calls); a wrong one is one clear error
    and is left alone."""
    gen = torch.Generator().manual_seed(5)
    codes = torch.randint(0, 4, (4, 19, 130), dtype=torch.uint8, generator=gen)
    packed = pack_codes(codes)
    w = cpu.lut_layout(packed) if variant == "lut512" else packed
    out = torch.full((2, 4, 19, 4), 7, dtype=torch.int32)
    for _ in range(2):
        p = torch.randint(-128, 128, (2, 130), dtype=torch.int8, generator=gen)
        q = torch.randint(-128, 128, (2, 130), dtype=torch.int8, generator=gen)
        got = cpu.fairy_sums(w, p, q, out=out)
        assert got is out and torch.equal(out.long(), golden(codes, p, q, [False, True, False, True]))
    before = out.clone()
    for bad, what in ((torch.zeros((2, 4, 19, 4), dtype=torch.int64), "int64"),
                      (torch.zeros((1, 4, 19, 4), dtype=torch.int32), r"\(1, 4, 19, 4\)"),
                      (torch.zeros((2, 4, 4, 19), dtype=torch.int32).transpose(2, 3), "not contiguous"),
                      (np.zeros((2, 4, 19, 4), np.int32), "ndarray")):
        expected = r"out must be a contiguous int32 CPU tensor \(2, 4, 19, 4\), not .*"
        with pytest.raises(FairyError, match=expected + what):
            cpu.fairy_sums(w, p, q, out=bad)
    assert torch.equal(out, before)


def test_cpu_threads_agree():
    gen = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 4, (2, 101, 300), dtype=torch.uint8, generator=gen)
    p = torch.randint(-128, 128, (1, 300), dtype=torch.int8, generator=gen)
    packed = pack_codes(codes)
    outs = [cpu.fairy_sums(packed, p, p, threads=t) for t in (1, 2, 3)]
    assert all(torch.equal(outs[0], o) for o in outs[1:])


@pytest.mark.parametrize("size", [1, 255, 256, 1000, 100_003])
def test_cpu_read_bytes(size):
    buf = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8)
    for threads in (1, 2):
        assert cpu.read_bytes(buf, threads) == int(np.bitwise_xor.reduce(buf))


@pytest.mark.parametrize("args, msg", [
    (dict(packed=np.zeros((4, 2, 3), np.int8)), "packed codes must be uint8"),
    (dict(p=np.zeros((1, 10), np.int16)), "p must be int8"),
    (dict(packed=np.zeros((4, 2, 4), np.uint8)), "do not hold 10 codes"),
    (dict(q=np.zeros((2, 10), np.int8)), "alike"),
    (dict(variant="avx9000"), "unknown CPU kernel variant"),
    (dict(conj=[True]), "one flag per matrix"),
])
def test_cpu_bad_inputs(args, msg):
    kw = dict(packed=np.zeros((4, 2, 3), np.uint8), p=np.zeros((1, 10), np.int8),
              q=np.zeros((1, 10), np.int8))
    kw.update(args)
    packed, p, q = kw.pop("packed"), kw.pop("p"), kw.pop("q")
    with pytest.raises(FairyError, match=msg):
        cpu.fairy_sums(packed, p, q, **kw)


def _fresh(env_extra, code):
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


def test_cpu_build_path(tmp_path):
    """First use builds into $FAIRYHW_CACHE under a hashed name; the next use loads it, no rebuild."""
    code = ("from fairyhw.kernels.cpu import kernel as cpu; import os; p = cpu.library_path(); "
            "print(os.path.exists(p)); cpu.load(); print(p)")
    r1 = _fresh({"FAIRYHW_CACHE": str(tmp_path)}, code)
    assert r1.returncode == 0, r1.stderr
    exists, path = r1.stdout.split()
    assert exists == "False" and os.path.dirname(path) == str(tmp_path)
    assert os.path.basename(path).startswith("fairyhw-cpu-") and os.path.exists(path)
    assert [f for f in os.listdir(tmp_path)] == [os.path.basename(path)]    # no temporary left
    mtime = os.path.getmtime(path)
    r2 = _fresh({"FAIRYHW_CACHE": str(tmp_path)}, code)
    assert r2.stdout.split() == ["True", path] and os.path.getmtime(path) == mtime


def test_cpu_no_compiler(tmp_path):
    r = _fresh({"FAIRYHW_CACHE": str(tmp_path), "CC": str(tmp_path / "no-such-cc")},
               "import sys; from fairyhw.kernels.cpu.kernel import main; sys.exit(main())")
    assert r.returncode == 2
    assert r.stderr.startswith("error: the CPU kernel needs a C compiler") and "Traceback" not in r.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("argv", [["--threads", "-1"], ["--threads", "x"], ["--rotate-mb", "0"]])
def test_bench_cpu_bad_options(argv, tmp_path):
    out = tmp_path / "b.json"
    r = subprocess.run([sys.executable, "-m", "fairyhw", "bench", "cpu", *argv, "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "error:" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
