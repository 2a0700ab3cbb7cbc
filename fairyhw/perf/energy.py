"""Energy per action and the memory systems: every figure names its source."""

from __future__ import annotations
from dataclasses import dataclass


# ---------------------------------------------------------------------------------------------------
# Energy table: every figure names its source. 45 nm figures scale to other nodes (see node_scale).

ENERGY_45NM = {
    "int8_add": (0.03e-12, "Horowitz ISSCC'14, 45 nm"),
    "int32_add": (0.1e-12, "Horowitz ISSCC'14, 45 nm"),
    "int8_mul": (0.2e-12, "Horowitz ISSCC'14, 45 nm"),
    "int32_mul": (3.1e-12, "Horowitz ISSCC'14, 45 nm"),
    "fp16_add": (0.4e-12, "Horowitz ISSCC'14, 45 nm"),
    "fp16_mul": (1.1e-12, "Horowitz ISSCC'14, 45 nm"),
    "sram_8k_64b": (10e-12, "Horowitz ISSCC'14, 45 nm: 64-bit read, 8 KB SRAM"),
    "sram_32k_64b": (20e-12, "Horowitz ISSCC'14, 45 nm: 64-bit read, 32 KB SRAM"),
    "sram_1m_64b": (100e-12, "Horowitz ISSCC'14, 45 nm: 64-bit read, 1 MB SRAM"),
}


def node_scale(node_nm: float) -> float:
    """First-order scaling of logic and SRAM energy from 45 nm: C V^2 with capacitance proportional to
    feature size and voltage held (a conservative choice: it ignores the voltage drop of newer nodes).
    DRAM and HBM energies are per bit at the interface and are not scaled."""
    return node_nm / 45.0


def add_energy(width: int) -> float:
    """Energy of one integer add of ``width`` bits at 45 nm: linear between Horowitz's int8 and int32."""
    e8, e32 = ENERGY_45NM["int8_add"][0], ENERGY_45NM["int32_add"][0]
    return e8 + (e32 - e8) * (max(8, width) - 8) / 24


@dataclass(frozen=True)
class Cost:
    """Seconds and joules of one action."""

    seconds: float = 0.0
    joules: float = 0.0


@dataclass(frozen=True)
class MemoryPreset:
    name: str
    bandwidth: float          # B/s
    pj_per_bit: float         # J/bit * 1e12
    static_w: float           # board static power assumed with this memory system, W
    source: str


MEMORY_PRESETS = {
    "ddr4-2400-x64": MemoryPreset("ddr4-2400-x64", 19.2e9, 31.0, 1.0,
                                  "DDR4-2400 x64: 19.2 GB/s; 1.3-2.6 nJ per 64-bit access "
                                  "(Horowitz ISSCC'14), midpoint 1.95 nJ = 31 pJ/bit; 1 W static for a small "
                                  "FPGA board (assumed)"),
    "ddr4-dual": MemoryPreset("ddr4-dual", 51.2e9, 31.0, 2.0,
                              "DDR4-3200 dual channel: 51.2 GB/s; energy as DDR4 above; 2 W static "
                              "(assumed)"),
    "u280-hbm2": MemoryPreset("u280-hbm2", 460e9, 3.97, 10.0,
                              "Alveo U280 HBM2: 460 GB/s, 3.97 pJ/bit (a published HBM2 access energy); 10 W static "
                              "for the card (assumed, UltraScale+ VU37P class)"),
    "h100-hbm3": MemoryPreset("h100-hbm3", 3.35e12, 3.97, 60.0,
                              "H100 SXM HBM3: 3.35 TB/s; HBM2's 3.97 pJ/bit used as a stand-in; 60 W "
                              "static (assumed)"),
    "h200-hbm3e": MemoryPreset("h200-hbm3e", 4.8e12, 3.97, 60.0,
                               "H200 HBM3e: 4.8 TB/s; HBM2's 3.97 pJ/bit used as a stand-in; 60 W "
                               "static (assumed)"),
}
