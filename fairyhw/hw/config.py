"""The one configuration object of a generated engine: every design parameter, bound and default.

:class:`EngineConfig` is a frozen dataclass validated once, in ``__post_init__``, with the messages the
command lines show. The engine, the generator, synthesis, the performance model, the design-space
sweep and the co-simulation builds all take it; derived figures (accumulator width, matrices, result
parts, row tile) are its properties. Pure Python: importing it needs no HDL stack.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from .. import FairyError

__all__ = ["EngineConfig", "MODES", "ACCUMULATE", "SHARING", "LANE_STYLES", "MAX_LANES", "MAX_DIM",
           "MAX_STAGES", "PRESETS", "check_int"]

#: Matrices streamed per stage in each mode, in stream order.
MODES = {"fairy2i": ("U", "W"), "ifairy": ("W",)}
#: Sum parts per accumulator style.
ACCUMULATE = {"split": ("ap", "aq", "bp", "bq"), "merged": ("re", "im")}
#: How the activation reaches the lanes: an on-chip buffer loaded once per layer, or streamed by the
#: host beside every weight beat (no buffer; the host resends x for every pass).
SHARING = ("buffer", "stream")
#: Lane styles: output-stationary lanes (one output row each, broadcast activation) or dot-product
#: lanes (one input column each, an adder tree, one row at a time).
LANE_STYLES = ("output", "dot")

#: Largest lane count (complex MACs per cycle) the generator accepts.
MAX_LANES = 4096
#: Largest input length and output row count.
MAX_DIM = 1 << 20
#: Largest residual stage count.
MAX_STAGES = 4


def check_int(what: str, value, lo: int, hi: int) -> None:
    """``TypeError`` unless ``value`` is an int (not a bool); ``ValueError`` unless in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{what} must be an integer from {lo} to {hi}, not {value}")


def _check_choice(what: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")


@dataclass(frozen=True)
class EngineConfig:
    """Every design parameter of a generated engine.

    Parameters
    ----------
    lanes : int
        Complex MACs per cycle, 1 to :data:`MAX_LANES`.
    max_in, max_out : int
        Largest complex input length K and output row count accepted at run time.
    stages : int
        Residual stages T, 1 to :data:`MAX_STAGES`.
    mode : {"fairy2i", "ifairy"}
        Matrices per stage: U then W, or W alone.
    accumulate : {"split", "merged"}
        Four exact integer sums per row, or the two of a swap-mux complex accumulator.
    sharing : {"buffer", "stream"}
        Activation buffer loaded once per layer, or streamed beside every weight beat.
    lane_style : {"output", "dot"}
        Output-stationary lanes or dot-product lanes with an adder tree.

    Raises
    ------
    TypeError
        A parameter of the wrong type.
    ValueError
        A value out of range, or values that conflict.
    """

    #: Complex MACs per cycle.
    lanes: int = 64
    #: Largest complex input length K (activation buffer depth).
    max_in: int = 8192
    #: Largest complex output row count.
    max_out: int = 16384
    #: Residual stages T.
    stages: int = 2
    #: ``fairy2i`` (U and W per stage) or ``ifairy`` (W only).
    mode: str = "fairy2i"
    #: ``split`` (4 exact sums per row) or ``merged`` (2 sums, swap-mux accumulator).
    accumulate: str = "split"
    #: ``buffer`` (loaded once per layer) or ``stream`` (beside every weight beat).
    sharing: str = "buffer"
    #: ``output`` (output-stationary lanes) or ``dot`` (dot-product lanes, adder tree).
    lane_style: str = "output"

    def __post_init__(self):
        check_int("Lane count", self.lanes, 1, MAX_LANES)
        check_int("Maximum input length", self.max_in, 1, MAX_DIM)
        check_int("Maximum output rows", self.max_out, 1, MAX_DIM)
        check_int("Stage count", self.stages, 1, MAX_STAGES)
        _check_choice("Mode", self.mode, tuple(MODES))
        _check_choice("Accumulator style", self.accumulate, tuple(ACCUMULATE))
        _check_choice("Activation sharing", self.sharing, SHARING)
        _check_choice("Lane style", self.lane_style, LANE_STYLES)
        if self.lane_style == "dot" and self.sharing != "buffer":
            raise ValueError("Dot-product lanes read their activations from the buffer: "
                             "sharing must be 'buffer'")

    # -- derived figures ------------------------------------------------------------------------

    @property
    def matrices(self) -> tuple:
        """Matrices streamed per stage, in order."""
        return MODES[self.mode]

    @property
    def parts(self) -> tuple:
        """Names of the sums in a result beat, in order."""
        return ACCUMULATE[self.accumulate]

    @property
    def acc_width(self) -> int:
        """Accumulator bits: never overflows for ``k <= max_in``
        (:func:`fairyhw.golden.accumulator_width`)."""
        from ..golden import accumulator_width
        return accumulator_width(self.max_in)

    @property
    def row_tile(self) -> int:
        """Rows computed together (the result order's tile): ``lanes``, or 1 for dot lanes."""
        return self.lanes if self.lane_style == "output" else 1

    def result_count(self, rows: int) -> int:
        """Result beats of a layer with ``rows`` rows: ``rows * stages * matrices``."""
        return rows * self.stages * len(self.matrices)

    # -- JSON -----------------------------------------------------------------------------------

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj) -> "EngineConfig":
        """Build from a dict (e.g. a manifest's ``parameters``); unknown keys are refused."""
        if not isinstance(obj, dict):
            raise FairyError(f"an engine configuration must be a JSON object, not {type(obj).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise FairyError(f"unknown engine parameter {unknown[0]!r} (known: {', '.join(sorted(known))})")
        try:
            return cls(**obj)
        except (TypeError, ValueError) as e:
            raise FairyError(str(e)) from None

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)


#: Named designs.
PRESETS = {
    "default": EngineConfig(),
    "small": EngineConfig(lanes=8, max_in=1024, max_out=1024),
    "merged": EngineConfig(accumulate="merged"),
    "dot": EngineConfig(lane_style="dot"),
    "ifairy": EngineConfig(mode="ifairy", stages=1),
}
