"""cocotb 2.x testbench of the generated engine: driver, monitor, golden model, checker.

The pytest side (``test_engine.py``) writes a job file (``FAIRYHW_JOB``: npz of layers with codes,
activations and the expected sums taken from the torch quantized model) and reads back the measured
results (``FAIRYHW_OUT``: JSON of cycles per layer and mismatches).
"""

from __future__ import annotations

import json
import os
import random
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from fairyhw.hw.config import MODES, EngineConfig
from fairyhw.hw.driver import wgt_beats
from fairyhw.hw.streams import act_beats, cmd_beat, unpack_result
from fairyhw.hw.timing import pass_count, result_beats


class StreamDriver:
    """Drives a valid/ready input stream ``<prefix>__{payload,valid,ready}``, with random idle cycles."""

    def __init__(self, dut, prefix, clk, idle=0.0, rng=None):
        self.payload = getattr(dut, f"{prefix}__payload")
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.clk, self.idle, self.rng = clk, idle, rng or random.Random(0)
        self.valid.value = 0

    async def send(self, beats, on_handshake=None):
        for b in beats:
            while self.idle and self.rng.random() < self.idle:
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.payload.value = b
            self.valid.value = 1
            while True:
                await FallingEdge(self.clk)      # inputs were written after the rising edge: settled
                ok = bool(self.ready.value)
                await RisingEdge(self.clk)
                if ok:
                    break
            if on_handshake:
                on_handshake()
        self.valid.value = 0


class ResultMonitor:
    """Accepts ``res`` beats (random back-pressure) and records payloads with their handshake cycle."""

    def __init__(self, dut, clk, cycle, backpressure=0.0, rng=None):
        self.dut, self.clk, self.cycle = dut, clk, cycle
        self.backpressure, self.rng = backpressure, rng or random.Random(1)
        self.beats = []
        dut.res__ready.value = 0

    async def collect(self, count):
        got = []
        while len(got) < count:
            ready = not (self.backpressure and self.rng.random() < self.backpressure)
            self.dut.res__ready.value = int(ready)
            await FallingEdge(self.clk)
            if ready and self.dut.res__valid.value:
                got.append((self.dut.res__payload.value.to_unsigned(), self.cycle()))
            await RisingEdge(self.clk)
        self.dut.res__ready.value = 0
        return got


class GoldenModel:
    """The expected result beats of a layer, in the engine's order, from the job's expected sums: a
    beat is a list of ``group`` rows ``(row, stage, matrix, sums)`` (fewer in a tile's last beat)."""

    def __init__(self, row_tile, group):
        self.row_tile, self.group = row_tile, group

    def beats(self, expected):
        stages, mats, rows, parts = expected.shape
        out = []
        for r0 in range(0, rows, self.row_tile):
            count = min(self.row_tile, rows - r0)
            for t in range(stages):
                for k in range(mats):
                    for b0 in range(0, count, self.group):
                        out.append([(r0 + r, t, k, [int(v) for v in expected[t, k, r0 + r]])
                                    for r in range(b0, min(b0 + self.group, count))])
        return out


class Checker:
    """Compares the monitor's beats with the model's; names the first wrong output."""

    def __init__(self, cfg):
        self.cfg, self.parts, self.matrices = cfg, cfg.parts, cfg.matrices
        self.errors = 0
        self.first = None

    def decode(self, payload):
        """``([sums of each of the beat's rows], last)``, read with the ``res`` layout."""
        return unpack_result(self.cfg, payload)

    def check(self, layer, expected_beats, got):
        if len(got) != len(expected_beats):
            self.errors += 1
            self.first = self.first or f"layer {layer}: {len(got)} result beats, expected {len(expected_beats)}"
        for n, (beat, (payload, _)) in enumerate(zip(expected_beats, got)):
            rows, last = self.decode(payload)
            if last != (n == len(expected_beats) - 1):
                self.errors += 1
                self.first = self.first or f"layer {layer} beat {n}: last flag {last}"
            for (row, t, k, exp), vals in zip(beat, rows):
                for part, (e, g) in enumerate(zip(exp, vals)):
                    if e != g:
                        self.errors += 1
                        self.first = self.first or (
                            f"layer {layer}: first wrong output row {row}, stage {t}, matrix "
                            f"{self.matrices[k]}, part {self.parts[part]}: expected {e}, got {g}")


class EngineTestbench:
    def __init__(self, dut, job):
        self.dut = dut
        self.meta = json.loads(str(job["meta"]))
        self.cfg = EngineConfig.from_json(self.meta["config"])
        self.lanes, self.acc_width = self.cfg.lanes, self.cfg.acc_width
        self.max_in = self.cfg.max_in
        self.sharing = self.cfg.sharing
        self.lane_style = self.cfg.lane_style
        self.row_tile = self.cfg.row_tile
        self.parts = list(self.cfg.parts)
        self.matrices = MODES[self.cfg.mode]
        rng = random.Random(self.meta.get("seed", 0))
        idle, bp = self.meta.get("idle", 0.0), self.meta.get("backpressure", 0.0)
        self.n = 0
        Clock(dut.clk, 10, unit="ns").start(start_high=False)
        cocotb.start_soon(self._count())
        self.cmd = StreamDriver(dut, "cmd", dut.clk, idle, rng)
        self.act = StreamDriver(dut, "act", dut.clk, idle, rng)
        self.wgt = StreamDriver(dut, "wgt", dut.clk, idle, rng)
        self.monitor = ResultMonitor(dut, dut.clk, lambda: self.n, bp, random.Random(rng.random()))
        self.model = GoldenModel(self.row_tile, self.cfg.res_per_beat)
        self.checker = Checker(self.cfg)

    async def _count(self):
        while True:
            await RisingEdge(self.dut.clk)
            self.n += 1

    async def reset(self, cycles=2):
        self.dut.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0

    def wgt_beats(self, codes):
        """codes: (stages, matrices, rows, K) uint8 -> wgt payload ints in the stream layout."""
        stages, mats = codes.shape[:2]
        return wgt_beats([[codes[t, k] for k in range(mats)] for t in range(stages)], self.lanes,
                         self.lane_style, (self.cfg.rows, self.cfg.cols))

    async def run_layer(self, codes, p, q):
        """Send one layer and collect its results. Returns (beats, cycles)."""
        stages, mats, rows, k = codes.shape
        start = {}

        async def feed():
            await self.cmd.send([cmd_beat(self.cfg, k, rows)],
                                on_handshake=lambda: start.setdefault("c", self.n - 1))
            if self.sharing == "buffer":
                await self.act.send(act_beats(self.cfg, p, q))
                await self.wgt.send(self.wgt_beats(codes))
            else:   # the two streams move together, one act beat with each wgt beat
                acts = cocotb.start_soon(self.act.send(act_beats(self.cfg, p, q, pass_count(self.cfg, rows))))
                await self.wgt.send(self.wgt_beats(codes))
                await acts

        self.feeder = cocotb.start_soon(feed())
        got = await self.monitor.collect(result_beats(self.cfg, rows))
        cycles = got[-1][1] - start["c"] + 1 if got else None
        return got, cycles


def load_job():
    return np.load(os.environ["FAIRYHW_JOB"], allow_pickle=False)


def write_out(record):
    with open(os.environ["FAIRYHW_OUT"], "w") as f:
        json.dump(record, f, indent=1)


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def run_layers(dut):
    """Every layer of the job, back to back: bit-exact sums and measured cycles."""
    job = load_job()
    tb = EngineTestbench(dut, job)
    await tb.reset()
    record = {"layers": []}
    t0, n0 = time.perf_counter(), tb.n
    for i, name in enumerate(tb.meta["layers"]):
        codes, p, q, exp = (job[f"{i}_codes"], job[f"{i}_p"], job[f"{i}_q"], job[f"{i}_expected"])
        got, cycles = await tb.run_layer(codes, p, q)
        tb.checker.check(name, tb.model.beats(exp), got)
        record["layers"].append({"name": name, "k": int(codes.shape[3]), "rows": int(codes.shape[2]),
                                 "cycles": cycles, "sums": [b[0] for b in got]})
    record.update(errors=tb.checker.errors, first=tb.checker.first, sim_cycles=tb.n - n0,
                  sim_seconds=time.perf_counter() - t0)
    write_out(record)
    assert tb.checker.errors == 0, tb.checker.first


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def reset_mid_layer(dut):
    """A reset in the middle of a layer returns the engine to idle; the next layer is exact."""
    job = load_job()
    tb = EngineTestbench(dut, job)
    await tb.reset()
    codes, p, q, exp = job["0_codes"], job["0_p"], job["0_q"], job["0_expected"]
    task = cocotb.start_soon(tb.run_layer(codes, p, q))
    for _ in range(int(tb.meta["reset_at"])):
        await RisingEdge(dut.clk)
    busy_before = int(dut.busy.value)
    task.cancel()
    tb.feeder.cancel()
    for drv in (tb.cmd, tb.act, tb.wgt):
        drv.valid.value = 0
    await tb.reset(3)
    await FallingEdge(dut.clk)
    idle_after = (int(dut.busy.value), int(dut.res__valid.value), int(dut.cmd__ready.value))
    await RisingEdge(dut.clk)
    got, cycles = await tb.run_layer(codes, p, q)
    tb.checker.check("after reset", tb.model.beats(exp), got)
    write_out({"busy_before": busy_before, "idle_after": idle_after, "cycles": cycles,
               "errors": tb.checker.errors, "first": tb.checker.first})
    assert busy_before == 1 and idle_after == (0, 0, 1)
    assert tb.checker.errors == 0, tb.checker.first
