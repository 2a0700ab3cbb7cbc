"""Run the engine in Amaranth's own simulator: the fast back end of the RTL harness.

:func:`rtl_engine` drives one or more layers through the streams with optional random idle cycles on the
inputs and back-pressure on the output, and returns plain data (result sums and the measured cycles),
to compare with :func:`fairyhw.hw.driver.ref_results`. The cocotb back end in ``sim/`` does the same on
the generated Verilog.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from amaranth.sim import Simulator

from .driver import decode_results, wgt_beats
from .streams import act_beats, cmd_beat, unpack_result
from .engine import Engine
from .timing import pass_count

__all__ = ["LayerRun", "rtl_engine"]


@dataclass
class LayerRun:
    sums: object          # int64 (stages, matrices, rows, parts)
    cycles: int           # command handshake to last result handshake, both included
    lasts: list           # the 'last' flag of every result beat


def rtl_engine(engine: Engine, layers, *, idle: float = 0.0, backpressure: float = 0.0,
               seed: int = 0, vcd: str | None = None, pad: int = 0) -> list[LayerRun]:
    """Run ``layers`` (a list of ``(matrices, p, q)``) back to back through ``engine``.

    ``idle`` and ``backpressure`` are the probabilities of an idle input cycle and of a not-ready output
    cycle. ``pad``: the 16-bit value the array's last act beat carries past ``k`` (the engine must
    ignore it). Returns one :class:`LayerRun` per layer.
    """
    rng = random.Random(seed)
    jobs = []
    for matrices, p, q in layers:
        rows, k = matrices[0][0].shape
        cfg = engine.config
        passes = 1 if engine.sharing == "buffer" else pass_count(cfg, rows)
        jobs.append({"k": k, "rows": rows, "cmd": cmd_beat(cfg, k, rows),
                     "act": act_beats(cfg, p, q, passes, pad),
                     "wgt": wgt_beats(matrices, engine.lanes, engine.lane_style, (cfg.rows, cfg.cols)),
                     "n_res": engine.result_count(rows)})
    marks = {"start": [], "end": []}
    results = [[] for _ in jobs]
    lasts = [[] for _ in jobs]
    clock = {"cycle": 0}

    async def send(ctx, port, beats, mark=None):
        for b in beats:
            while idle and rng.random() < idle:
                ctx.set(port.valid, 0)
                await ctx.tick()
            ctx.set(port.payload.as_value() if hasattr(port.payload, "as_value") else port.payload, b)
            ctx.set(port.valid, 1)
            while True:
                _, _, ready = await ctx.tick().sample(port.ready)
                if ready:
                    break
            if mark is not None:
                marks[mark].append(clock["cycle"] - 1)
        ctx.set(port.valid, 0)

    async def driver(ctx):
        for job in jobs:
            await send(ctx, engine.cmd, [job["cmd"]], "start")
            if engine.sharing == "buffer":
                await send(ctx, engine.act, job["act"])
                await send(ctx, engine.wgt, job["wgt"])
            else:
                await send_pairs(ctx, job["act"], job["wgt"])

    async def send_pairs(ctx, acts, wgts):
        """Stream sharing: an act beat and a wgt beat offered together, each with its own idles."""
        ia = iw = 0
        while ia < len(acts) or iw < len(wgts):
            va = ia < len(acts) and not (idle and rng.random() < idle)
            vw = iw < len(wgts) and not (idle and rng.random() < idle)
            if va:
                ctx.set(engine.act.payload.as_value(), acts[ia])
            if vw:
                ctx.set(engine.wgt.payload, wgts[iw])
            ctx.set(engine.act.valid, va)
            ctx.set(engine.wgt.valid, vw)
            _, _, ra, rw = await ctx.tick().sample(engine.act.ready, engine.wgt.ready)
            ia += bool(va and ra)
            iw += bool(vw and rw)
        ctx.set(engine.act.valid, 0)
        ctx.set(engine.wgt.valid, 0)

    async def consumer(ctx):
        for i, job in enumerate(jobs):
            while len(results[i]) < job["n_res"]:
                ready = not (backpressure and rng.random() < backpressure)
                ctx.set(engine.res.ready, ready)
                _, _, valid, payload = await ctx.tick().sample(engine.res.valid,
                                                               engine.res.payload.as_value())
                if valid and ready:
                    results[i].append(payload)
                    lasts[i].append(unpack_result(engine.config, payload)[1])
            marks["end"].append(clock["cycle"] - 1)
        ctx.set(engine.res.ready, 0)

    async def counter(ctx):
        while True:
            await ctx.tick()
            clock["cycle"] += 1

    # the array's act ready, once high, stays high until a beat is taken (docs/formats.md; the
    # system top's activation unpacker relies on it): the cycles where it fell without a take
    fell = []

    async def act_ready_monitor(ctx):
        was = False
        async for _, _, valid, ready in ctx.tick().sample(engine.act.valid, engine.act.ready):
            if was and not ready:
                fell.append(clock["cycle"])
            was = bool(ready and not valid)

    sim = Simulator(engine)
    sim.add_clock(1e-8)
    sim.add_process(counter)
    if engine.lane_style == "array":
        sim.add_process(act_ready_monitor)
    sim.add_testbench(driver, background=True)
    sim.add_testbench(consumer)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    if fell:
        raise AssertionError(f"act ready fell without a beat taken at cycles {fell[:5]}")
    out = []
    for i, job in enumerate(jobs):
        sums = decode_results(engine.config, results[i], job["rows"])
        out.append(LayerRun(sums, marks["end"][i] - marks["start"][i] + 1, lasts[i]))
    return out
