"""The sweep's configuration (JSON) and its points."""

from __future__ import annotations
from dataclasses import asdict, dataclass
from .. import FairyError, __version__
from ..hw.config import DEFAULT as ENGINE_DEFAULT


ECP5_85K_LUTS = 83_640


#: Output rows of every engine point: the engine's default (the largest LLaMA-2 7B layer has 16,000
#: complex rows).
MAX_OUT = ENGINE_DEFAULT.max_out


ECP5_85K_MULT18 = 156


DEFAULT = {
    # the output-stationary lanes at 64 MACs a cycle, beside the array of the same MACs (1 x 64)
    "lanes": [64], "accumulate": ["split", "merged"], "sharing": ["buffer"], "stages": [2],
    "lane_style": ["output"],
    # array shapes [rows, cols] from 64 MACs a cycle to the U280-class instance; shapes above
    # `extrapolate_above` MACs are synthesised as slices and extrapolated (too big to synthesise whole
    # on two cores), and projected at the place-and-route clock of the largest placed array of the
    # same columns
    "arrays": [[1, 64], [1, 128], [8, 128], [32, 128], [112, 128], [158, 128]], "extrapolate_above": 128,
    "mode": ["fairy2i"],
    "max_in": [ENGINE_DEFAULT.max_in], "act_bits": [8], "clock_mhz": [200.0],
    "memory": ["ddr4-2400-x64", "ddr4-dual", "u280-hbm2"],
    "targets": ["ecp5", "xilinx"], "pnr": True, "baselines": [64], "accuracy": True,
}


KEYS = set(DEFAULT)


@dataclass(frozen=True)
class SweepConfig:
    lanes: tuple
    accumulate: tuple
    arrays: tuple
    extrapolate_above: int
    sharing: tuple
    lane_style: tuple
    stages: tuple
    mode: tuple
    max_in: tuple
    act_bits: tuple
    clock_mhz: tuple
    memory: tuple
    targets: tuple
    pnr: bool
    baselines: tuple
    accuracy: bool


def _fail(msg):
    raise FairyError(msg)


def load_config(obj) -> SweepConfig:
    """Validate a sweep description (a dict, e.g. from a JSON file); fill defaults."""
    from ..hw.config import (ACCUMULATE, MAX_COLS, MAX_DIM, MAX_LANES, MAX_LANES_1D, MAX_STAGES, MODES,
                             SHARING)
    LANE_STYLES = ("output", "dot")     # the lanes axis; arrays have their own
    from ..perf import MEMORY_PRESETS
    from ..flow.synth import TARGETS
    if not isinstance(obj, dict):
        _fail(f"sweep config must be a JSON object, not {type(obj).__name__}")
    unknown = sorted(set(obj) - KEYS)
    if unknown:
        _fail(f"unknown sweep config key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")
    cfg = {**DEFAULT, **obj}

    def ints(key, lo, hi):
        v = cfg[key]
        if not isinstance(v, list) or not v:
            _fail(f"{key} must be a non-empty list, not {v!r}")
        for x in v:
            if isinstance(x, bool) or not isinstance(x, int) or not lo <= x <= hi:
                _fail(f"{key} values must be integers from {lo} to {hi}, not {x!r}")
        return tuple(v)

    def choices(key, allowed):
        v = cfg[key]
        if not isinstance(v, list) or not v:
            _fail(f"{key} must be a non-empty list, not {v!r}")
        for x in v:
            if x not in allowed:
                _fail(f"{key} values must be among {', '.join(allowed)}, not {x!r}")
        return tuple(v)

    clocks = cfg["clock_mhz"]
    if not isinstance(clocks, list) or not clocks or any(
            isinstance(c, bool) or not isinstance(c, (int, float)) or not (0 < c < 2000) for c in clocks):
        _fail(f"clock_mhz must be a non-empty list of numbers in (0, 2000), not {clocks!r}")
    if cfg["act_bits"] != [8]:
        _fail(f"act_bits must be [8]: the generator supports int8 activations only, not {cfg['act_bits']!r}")
    base = cfg["baselines"]
    if not isinstance(base, list) or any(isinstance(x, bool) or not isinstance(x, int) or
                                         not 1 <= x <= 1024 for x in base):
        _fail(f"baselines must be a list of lane counts from 1 to 1024, not {base!r}")
    for key in ("pnr", "accuracy"):
        if not isinstance(cfg[key], bool):
            _fail(f"{key} must be true or false, not {cfg[key]!r}")
    arrays = cfg["arrays"]
    if not isinstance(arrays, list) or any(
            not isinstance(a, list) or len(a) != 2 or any(isinstance(v, bool) or not isinstance(v, int)
                                                           for v in a)
            or not 1 <= a[0] <= MAX_LANES or not 1 <= a[1] <= MAX_COLS or a[0] * a[1] > MAX_LANES
            for a in arrays):
        _fail(f"arrays must be a list of [rows, cols] pairs (cols 1 to {MAX_COLS}, rows x cols at most "
              f"{MAX_LANES}), not {arrays!r}")
    ext = cfg["extrapolate_above"]
    if isinstance(ext, bool) or not isinstance(ext, int) or ext < 1:
        _fail(f"extrapolate_above must be a positive integer (MACs per cycle), not {ext!r}")
    return SweepConfig(lanes=ints("lanes", 1, MAX_LANES_1D), arrays=tuple(tuple(a) for a in arrays),
                       extrapolate_above=ext, accumulate=choices("accumulate", tuple(ACCUMULATE)),
                       sharing=choices("sharing", SHARING), lane_style=choices("lane_style", LANE_STYLES),
                       stages=ints("stages", 1, MAX_STAGES), mode=choices("mode", tuple(MODES)),
                       max_in=ints("max_in", 1, MAX_DIM), act_bits=(8,),
                       clock_mhz=tuple(float(c) for c in clocks),
                       memory=choices("memory", tuple(MEMORY_PRESETS)),
                       targets=choices("targets", tuple(TARGETS)), pnr=cfg["pnr"],
                       baselines=tuple(base), accuracy=cfg["accuracy"])


@dataclass(frozen=True)
class Point:
    """One hardware point: what is generated and synthesised. Memory presets are projection axes."""

    kind: str               # "engine", "baseline-complex-int8", "baseline-ternary"
    lanes: int
    accumulate: str = "split"
    stages: int = 2
    mode: str = "fairy2i"
    max_in: int = ENGINE_DEFAULT.max_in
    clock_mhz: float = 100.0
    targets: tuple = ("ecp5", "xilinx")
    pnr: bool = True
    sharing: str = "buffer"
    lane_style: str = "output"
    rows: int = 0
    cols: int = 0
    extrapolate: bool = False

    def engine(self):
        """The point's :class:`~fairyhw.hw.config.EngineConfig` (engine points only)."""
        from ..hw.config import EngineConfig
        return EngineConfig(lanes=self.lanes, max_in=self.max_in, max_out=MAX_OUT, stages=self.stages,
                            mode=self.mode, accumulate=self.accumulate, sharing=self.sharing,
                            lane_style=self.lane_style, rows=self.rows, cols=self.cols)

    def key(self) -> str:
        """Cache key: the point's configuration, the fairyhw version and the hardware sources' hash,
        so a changed generator never reuses stale results."""
        from ..flow.synth import sources_key
        return sources_key(asdict(self), __version__)

    def label(self) -> str:
        if self.kind != "engine":
            return f"{self.kind} x{self.lanes}"
        if self.lane_style == "array":
            return (f"{self.rows}x{self.cols} array {self.accumulate} T{self.stages} {self.mode}"
                    + (" (extrapolated)" if self.extrapolate else ""))
        extra = ("" if self.sharing == "buffer" else " act-stream") + \
            ("" if self.lane_style == "output" else " dot")
        return f"{self.lanes} lanes {self.accumulate} T{self.stages} {self.mode}{extra}"


def points_of(cfg: SweepConfig) -> list[Point]:
    pts = [Point("engine", lanes, accumulate=acc, stages=t, mode=mode, max_in=k, clock_mhz=clk,
                 targets=cfg.targets, pnr=cfg.pnr, sharing=sh, lane_style=ls)
           for lanes in cfg.lanes for acc in cfg.accumulate for sh in cfg.sharing
           for ls in cfg.lane_style if not (ls == "dot" and sh != "buffer") for t in cfg.stages
           for mode in cfg.mode for k in cfg.max_in for clk in cfg.clock_mhz]
    pts += [Point("engine", r * c, accumulate=acc, stages=t, mode=mode, max_in=k, clock_mhz=clk,
                  targets=cfg.targets, pnr=cfg.pnr and r * c <= cfg.extrapolate_above,
                  lane_style="array", rows=r, cols=c, extrapolate=r * c > cfg.extrapolate_above)
            for r, c in cfg.arrays for acc in cfg.accumulate for t in cfg.stages for mode in cfg.mode
            for k in cfg.max_in for clk in cfg.clock_mhz]
    for lanes in cfg.baselines:
        for kind in ("baseline-complex-int8", "baseline-ternary"):
            pts.append(Point(kind, lanes, max_in=0, clock_mhz=cfg.clock_mhz[0], targets=cfg.targets,
                             pnr=cfg.pnr))
    return pts
