"""The run-time CUDA build path (NVRTC + driver through ctypes) fails with one clear error where it
cannot work; these run without a GPU."""

import pytest

from fairyhw import FairyError
from fairyhw.kernels.gpu import nvrtc


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(nvrtc, "_nvrtc", None)


def test_env_names_the_library(monkeypatch):
    monkeypatch.setenv("FAIRYHW_NVRTC", "/opt/somewhere/libnvrtc.so.13")
    assert nvrtc.nvrtc_path() == "/opt/somewhere/libnvrtc.so.13"


def test_missing_library_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("FAIRYHW_NVRTC", str(tmp_path / "libnvrtc.so.99"))
    with pytest.raises(FairyError, match="cannot load NVRTC from .*libnvrtc.so.99"):
        nvrtc.compile_cubin("__global__ void k() {}", "k", "sm_90")


def test_not_a_library_is_one_clear_error(monkeypatch, tmp_path):
    fake = tmp_path / "libnvrtc.so.12"
    fake.write_text("not an ELF file")
    monkeypatch.setenv("FAIRYHW_NVRTC", str(fake))
    with pytest.raises(FairyError, match="cannot load NVRTC"):
        nvrtc.nvrtc_version()


def test_no_library_found(monkeypatch):
    monkeypatch.delenv("FAIRYHW_NVRTC", raising=False)
    monkeypatch.setattr(nvrtc, "nvrtc_path", lambda: None)
    with pytest.raises(FairyError, match="needs NVRTC"):
        nvrtc.nvrtc_version()


def _have_nvrtc():
    try:
        nvrtc._nvrtc = None
        nvrtc.nvrtc_version()
        return True
    except FairyError:
        return False


needs_nvrtc = pytest.mark.skipif(not _have_nvrtc(), reason="no NVRTC library here (CUDA builds of torch bring one)")


@needs_nvrtc
def test_compile_error_is_reported_with_the_log():
    with pytest.raises(FairyError, match='could not compile k for sm_90:(.|\\n)*"undefined_thing" is undefined'):
        nvrtc.compile_cubin("__global__ void k() { undefined_thing(); }", "k", "sm_90")


@needs_nvrtc
def test_kernels_compile_for_hopper():
    """The kernels compile (no GPU needed): the instantiations the launchers use, and the read baseline."""
    from fairyhw.kernels.gpu import kernel as gpu
    src = gpu.mma_source()
    for expr in ("fairy_mma<1,2,2,true,true>", "fairy_mma<1,4,2,true,false>", "fairy_mma<8,2,1,false,false>"):
        cubin, lowered = nvrtc.compile_cubin(src, expr, "sm_90")
        assert cubin[:4] == b"\x7fELF" and lowered.startswith("_Z9fairy_mma")
    assert nvrtc.compile_cubin(src, "read_xor<4>", "sm_80")[0][:4] == b"\x7fELF"


def test_bench_gpu_without_a_gpu_is_one_error(tmp_path):
    """On a machine with no CUDA GPU: one error line, exit 2, no results file."""
    import subprocess
    import sys
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "g.json"
    r = subprocess.run([sys.executable, "-m", "fairyhw", "bench", "gpu", "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: the GPU bench needs a CUDA GPU")
    assert "Traceback" not in r.stderr and not out.exists()


@needs_nvrtc
def test_persistent_and_rate_kernels_compile():
    """The persistent kernel in every breakdown mode, and the instruction-rate probe (its wgmma form
    for the architecture-specific sm_90a target)."""
    from fairyhw.kernels.gpu import kernel as gpu
    src = gpu.mma_source()
    for mode in gpu.PERSIST_MODES.values():
        expr = (f"fairy_mma_persist<{gpu.PERSIST_WARPS},{mode},{gpu.PERSIST_MAX_STAGES},"
                f"{gpu.PERSIST_MAX_TILES},{gpu.PERSIST_MAX_CHUNKS}>")
        assert nvrtc.compile_cubin(src, expr, "sm_90")[0][:4] == b"\x7fELF"
    with open(gpu._RATES_SRC) as f:
        rates = f.read()
    for _, form, _, _ in gpu.RATE_FORMS:
        arch = "sm_90a" if form == 2 else "sm_90"
        assert nvrtc.compile_cubin(rates, f"mma_rate<{form},8>", arch)[0][:4] == b"\x7fELF"
    assert nvrtc.compile_cubin(rates, "wg_check", "sm_90a")[0][:4] == b"\x7fELF"
