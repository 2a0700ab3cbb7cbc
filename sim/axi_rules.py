"""A checker of the AXI handshake rule on a manager's channels: once a source raises ``valid``, it
keeps ``valid`` high and its payload unchanged until the cycle of the handshake (``valid`` and
``ready`` both high at a rising edge). cocotbext-axi's subordinates sample only at handshakes, so
they do not see a valid that falls, or a payload that changes, while ``ready`` is low."""

from cocotb.triggers import ReadOnly, RisingEdge

#: The channels a manager drives, each with its payload signals.
CHANNELS = {"ar": ("araddr", "arlen", "arsize", "arburst"),
            "aw": ("awaddr", "awlen", "awsize", "awburst"),
            "w": ("wdata", "wstrb", "wlast")}


class HandshakeChecker:
    """Watches channel ``chan`` of the port named ``prefix`` (``m_axi_res``, ...); every breach of the
    rule goes into ``errors`` as ``(cycle, what)``; ``offers`` counts the cycles where ``valid``
    waited on ``ready`` (so that a test can tell whether it exercised the rule at all)."""

    def __init__(self, dut, prefix, chan, clk, errors):
        self.name = f"{prefix}.{chan}"
        self.valid = getattr(dut, f"{prefix}_{chan}valid")
        self.ready = getattr(dut, f"{prefix}_{chan}ready")
        self.payload = [getattr(dut, f"{prefix}_{n}") for n in CHANNELS[chan]
                        if hasattr(dut, f"{prefix}_{n}")]
        self.clk, self.errors = clk, errors
        self.offers = 0

    async def run(self):
        cycle, held = 0, None          # held: the payload offered at the last edge without a handshake
        while True:
            await RisingEdge(self.clk)
            await ReadOnly()
            cycle += 1
            valid, ready = bool(self.valid.value), bool(self.ready.value)
            payload = tuple(str(s.value) for s in self.payload)
            if held is not None:
                if not valid:
                    self.errors.append((cycle, f"{self.name}: valid fell before its handshake"))
                elif payload != held:
                    self.errors.append((cycle, f"{self.name}: payload changed before its handshake"))
            held = payload if valid and not ready else None
            self.offers += held is not None
