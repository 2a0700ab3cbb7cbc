"""A memory model for co-simulation: the read side of an AXI4 subordinate with a set read latency,
bandwidth and outstanding-burst limit (cocotbext-axi's AxiRam has none of these knobs: it answers
as fast as the bus allows, throttled only by random pauses).

Timing, per clock edge: a burst is accepted on ``ar`` while fewer than ``outstanding`` are in
flight; its first beat may go out ``latency`` cycles after acceptance; beats leave in order, one a
cycle at most, each spending ``width`` bytes of a budget that grows by ``bytes_per_cycle`` a cycle
(at most two beats' worth saved). A beat past the memory's end answers DECERR."""

import random

from cocotb.triggers import RisingEdge


class ReadMemory:
    def __init__(self, dut, prefix, clk, *, size, bytes_per_cycle, latency, outstanding, ar_pause=0.0,
                 seed=0, mem=None):
        self.s = {n: getattr(dut, f"{prefix}_{n}") for n in ("arvalid", "arready", "araddr", "arlen",
                                                              "rvalid", "rready", "rdata", "rresp", "rlast")}
        self.clk = clk
        self.mem = bytearray(size) if mem is None else mem      # mem: shared with other ports
        self.width = len(self.s["rdata"]) // 8
        self.rate, self.latency, self.outstanding = bytes_per_cycle, latency, outstanding
        self.rng, self.ar_pause = random.Random(seed), ar_pause
        self.cycle = 0
        self.bursts = []                   # accepted: [ready cycle, address, beats left]
        self.stats = {"bursts": 0, "beats": 0}

    def write(self, addr, data):
        self.mem[addr:addr + len(data)] = data

    async def run(self):
        s = self.s
        budget = 0.0
        s["arready"].value = 0
        s["rvalid"].value = 0
        s["rresp"].value = 0
        while True:
            await RisingEdge(self.clk)
            self.cycle += 1
            # what happened at this edge
            if s["arvalid"].value and s["arready"].value:
                self.bursts.append([self.cycle + self.latency, int(s["araddr"].value),
                                    int(s["arlen"].value) + 1])
                self.stats["bursts"] += 1
            if s["rvalid"].value and s["rready"].value:
                b = self.bursts[0]
                budget -= self.width
                b[1] += self.width
                b[2] -= 1
                self.stats["beats"] += 1
                if b[2] == 0:
                    self.bursts.pop(0)
            budget = min(budget + self.rate, 2 * self.width)
            # the next cycle's outputs
            s["arready"].value = int(len(self.bursts) < self.outstanding
                                     and self.rng.random() >= self.ar_pause)
            if self.bursts and self.bursts[0][0] <= self.cycle and budget >= self.width:
                _, addr, left = self.bursts[0]
                s["rvalid"].value = 1
                inside = addr + self.width <= len(self.mem)
                s["rdata"].value = int.from_bytes(self.mem[addr:addr + self.width], "little") if inside else 0
                s["rresp"].value = 0 if inside else 3          # DECERR past the memory's end
                s["rlast"].value = int(left == 1)
            else:
                s["rvalid"].value = 0


class WriteMemory:
    """The write side of an AXI4 subordinate that never waits: ``awready`` and ``wready`` always
    high, each burst's response on ``b`` the cycle after its last beat (in order, held until taken;
    after its address, where the data came first). Writes land in ``mem`` (shared with the read
    ports)."""

    def __init__(self, dut, prefix, clk, *, mem):
        names = ("awvalid", "awready", "awaddr", "awlen", "wvalid", "wready", "wdata", "wstrb", "wlast",
                 "bvalid", "bready", "bresp")
        self.s = {n: getattr(dut, f"{prefix}_{n}") for n in names}
        self.clk, self.mem = clk, mem
        self.width = len(self.s["wdata"]) // 8

    async def run(self):
        s = self.s
        s["awready"].value = 1
        s["wready"].value = 1
        s["bvalid"].value = 0
        s["bresp"].value = 0
        # `beats`: data taken before their burst's address (AXI allows it), written once it comes
        bursts, beats, responses = [], [], 0
        while True:
            await RisingEdge(self.clk)
            if s["bvalid"].value and s["bready"].value:
                responses -= 1
            if s["awvalid"].value:
                bursts.append(int(s["awaddr"].value))
            if s["wvalid"].value:
                beats.append((int(s["wdata"].value).to_bytes(self.width, "little"), int(s["wstrb"].value),
                              bool(s["wlast"].value)))
            while beats and bursts:
                data, strb, last = beats.pop(0)
                addr = bursts[0]
                for i in range(self.width):
                    if strb >> i & 1:
                        self.mem[addr + i:addr + i + 1] = data[i:i + 1]
                bursts[0] += self.width
                if last:
                    bursts.pop(0)
                    responses += 1
            s["bvalid"].value = int(responses > 0)
