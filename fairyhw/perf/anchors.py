"""The published systems fairyhw is measured against, and the facts of the Alveo U280 board, written
once for the projection report and the design-space exploration."""

#: Alveo U280 (XCU280) resources.
U280_LUTS = 1_303_680   # 1.30 M LUTs
U280_FFS = 2_607_360    # 2.61 M flip-flops
U280_BRAM36 = 2016      # 2,016 BRAM36
U280_URAM = 960         # 960 UltraRAMs
#: LUT sites of one Xilinx LUTRAM cell (RAM64M, RAM32M: four LUTs of a SLICEM), which the LUT counts
#: (logic LUTs) leave out.
LUTRAM_SITES = 4
#: The share of the U280's LUTs a design may fill (routing needs the rest).
FIT_SHARE = 0.70
#: Board power of the published U280 anchors (AccLLM's tokens/J are at 33 W), to compare tokens/J at.
ANCHOR_BOARD_W = 33.0

#: LLaMA-2 7B decode (batch 1): (label, short label for plots or None to leave it off them, tokens/s,
#: tokens/J or None, source).
ANCHORS = [
    ("AccLLM (U280, W2A8, simulated)", "AccLLM (U280)", 164.0, 4.96, "arXiv 2505.03745"),
    ("FlightLLM (U280, measured)", "FlightLLM (U280)", 55.0, None, "FPGA'24"),
    ("FairyFuse (Xeon socket, CPU, Fairy2i-W2)", "FairyFuse (CPU)", 32.4, None, "arXiv 2604.20913"),
    ("T-MAC (M2 Ultra, 8 threads, 2-bit)", None, 51.0, None, "T-MAC"),
    ("T-MAC (Raspberry Pi 5, 2 threads, 2-bit)", None, 5.9, None, "T-MAC"),
]
# torch bf16 F.linear on the GPU is measured by `fairyhw bench gpu` (reports/bench_gpu.json) and shown
# with the measured kernels, on the GPU it ran on.
