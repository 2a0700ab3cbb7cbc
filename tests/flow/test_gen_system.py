"""``fairyhw gen --system``: the system top's Verilog, manifest and C header, byte-identical across
runs, the header a valid C header of the register map and descriptor, and the system options refused
without ``--system``."""

import json
import shutil
import subprocess
import sys

import pytest

from fairyhw.hw.axi import REGISTERS
from fairyhw.hw.config import DESCRIPTOR, DESCRIPTOR_BYTES


def gen(*args, cwd):
    return subprocess.run([sys.executable, "-m", "fairyhw.gen", *args], cwd=cwd, capture_output=True,
                          text=True)


def test_system_files_are_deterministic_and_complete(tmp_path):
    args = ["--system", "--rows", "2", "--cols", "8", "--max-in", "64", "--max-out", "64",
            "--data-width", "64", "--weight-ports", "2", "--addr-width", "32"]
    a = gen(*args, "--out", "a", cwd=tmp_path)
    b = gen(*args, "--out", "b", cwd=tmp_path)
    assert a.returncode == 0 and b.returncode == 0, a.stderr
    assert "system top: 2 weight ports" in a.stdout
    for ext in (".v", ".json", ".h"):
        assert (tmp_path / "a" / f"fairyhw_system{ext}").read_bytes() == \
            (tmp_path / "b" / f"fairyhw_system{ext}").read_bytes()
    man = json.loads((tmp_path / "a" / "fairyhw_system.json").read_text())
    assert man["kind"] == "system" and man["system"]["weight_ports"] == 2
    assert [r["offset"] for r in man["registers"]] == [r.offset for r in REGISTERS]
    assert [w["name"] for w in man["descriptor"]["words"]] == list(DESCRIPTOR)
    names = {p["name"] for p in man["ports"]}
    for port in ("aclk", "aresetn", "irq", "s_axil_awaddr", "m_axi_ctrl_araddr", "m_axi_wgt1_rdata",
                 "m_axi_res_wdata", "m_axi_res_bresp"):
        assert port in names, port
    v = (tmp_path / "a" / "fairyhw_system.v").read_text()
    assert "module fairyhw_system (" in v and "module fairyhw_system_core(" in v


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a C compiler")
def test_header_compiles(tmp_path):
    assert gen("--system", "--out", "o", cwd=tmp_path).returncode == 0
    (tmp_path / "t.c").write_text(
        '#include "fairyhw_system.h"\n'
        "_Static_assert(sizeof(fairyhw_system_descriptor_t) == FAIRYHW_SYSTEM_DESCRIPTOR_BYTES, \"size\");\n"
        "int main(void) { return FAIRYHW_SYSTEM_STATUS == 0x08u ? 0 : 1; }\n")
    r = subprocess.run(["gcc", "-Wall", "-Werror", "-std=c11", "-I", "o", "t.c", "-o", "t"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert subprocess.run([str(tmp_path / "t")]).returncode == 0
    assert DESCRIPTOR_BYTES == 64


@pytest.mark.parametrize("args, msg", [
    (["--data-width", "64"], "add --system"),
    (["--system", "--lane-style", "output", "--sharing", "stream"], "sharing must be 'buffer'"),
    (["--system", "--data-width", "100"], "invalid choice"),
    (["--system", "--weight-ports", "65"], "weight-ports"),
])
def test_bad_system_options_one_error(tmp_path, args, msg):
    r = gen(*args, "--out", "o", cwd=tmp_path)
    assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()
