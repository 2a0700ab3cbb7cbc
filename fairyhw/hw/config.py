"""The one configuration object of a generated engine: every design parameter, bound and default.

:class:`EngineConfig` is a frozen dataclass validated once, in ``__post_init__``, with the messages the
command lines show. The engine, the generator, synthesis, the performance model, the design-space
sweep and the co-simulation builds all take it; derived figures (accumulator width, matrices, result
parts, row tile) are its properties. Pure Python: importing it needs no HDL stack.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from dataclasses import asdict, dataclass, fields

from .. import FairyError
from .timing import BLOCK_FIFO_MIN_DEPTH

__all__ = ["EngineConfig", "MODES", "ACCUMULATE", "SHARING", "LANE_STYLES", "MAX_LANES", "MAX_DIM",
           "MAX_STAGES", "MAX_COLS", "PRESETS", "check_int", "default_shape", "default_group",
           "SystemConfig", "DATA_WIDTHS", "DESCRIPTOR", "DESCRIPTOR_BYTES", "ERRORS", "RESULT_SUM_BITS",
           "slot_bits", "memory_words", "validating"]

#: Matrices streamed per stage in each mode, in stream order.
MODES = {"fairy2i": ("U", "W"), "ifairy": ("W",)}
#: Sum parts per accumulator style.
ACCUMULATE = {"split": ("ap", "aq", "bp", "bq"), "merged": ("re", "im")}
#: How the activation reaches the lanes: an on-chip buffer loaded once per layer, or streamed by the
#: host beside every weight beat (no buffer; the host resends x for every pass).
SHARING = ("buffer", "stream")
#: Lane styles: output-stationary lanes (one output row each, broadcast activation) or dot-product
#: lanes (one input column each, an adder tree, one row at a time).
#: ``array``: R rows x C columns, pair-shared bit-plane trees, one row tile of R rows at a time.
LANE_STYLES = ("output", "dot", "array")

#: Largest lane count (complex MACs per cycle) the generator accepts (the array style).
MAX_LANES = 65536
#: Largest lane count of the one-dimensional styles (output and dot lanes).
MAX_LANES_1D = 4096
#: Largest input length and output row count.
MAX_DIM = 1 << 20
#: Largest residual stage count.
MAX_STAGES = 4
#: Largest column count of the array style (activations read per cycle).
MAX_COLS = 1024
#: Largest column count the default array shape picks for ``--lanes N``.
DEFAULT_MAX_COLS = 128
#: Input length the default result group is sized for: LLaMA-2 7B's smallest K (2048 complex inputs),
#: so that a row tile's results drain within one pass and never stall the array.
RESULT_K = 2048
#: Most adder levels between pipeline registers in the array's trees.
MAX_TREE_REGS = 4
#: Columns of one bank of the array's activation buffer: 2 columns of 16 bits are 32 bits, one
#: 36-bit ECP5 block RAM while the buffer is at most 512 deep (64 at 128 columns), so each block RAM
#: has its own write and read control registers beside it (see the array's engine). With banks of 9
#: columns (four block RAMs), nextpnr placed a bank's RAMs apart and its address register's route was
#: the critical path (6.6 ns, 134.8 MHz at 1 x 128).
BANK_COLS = 2
#: Banks that share one middle copy of a sequencer register on its way to the banks' own copies.
COPY_FANOUT = 8


def default_shape(lanes: int) -> tuple[int, int]:
    """The array shape ``(rows, cols)`` that ``--lanes N`` picks: the most columns (up to
    :data:`DEFAULT_MAX_COLS`) that divide ``N``, so a row's tree is wide and few roots are paid for."""
    cols = max(d for d in range(1, min(lanes, DEFAULT_MAX_COLS) + 1) if lanes % d == 0)
    return lanes // cols, cols


def default_group(rows: int, cols: int) -> int:
    """Rows per result beat: enough that a tile's ``rows`` results drain, and the result register
    empties, within the ``ceil(RESULT_K / cols)`` cycles of one pass."""
    return max(1, -(-rows // max(1, -(-RESULT_K // cols) - 1)))


@contextlib.contextmanager
def validating(component):
    """Around a component's parameter checks in its ``__init__``: if one raises, the half-built
    component is marked so that Amaranth does not warn, when it is collected, that it was created and
    never elaborated (for the caller it was never created)."""
    try:
        yield
    except Exception:
        component._MustUse__silence = True
        raise


#: The width of the low half of a sum made in two halves (:func:`fairyhw.hw.dma.add_in_halves`,
#: and the system top's address sums), and so the narrowest byte address a system takes.
HALF = 32


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
    lane_style : {"array", "output", "dot"}
        An R x C array of pipelined row trees (the default), output-stationary lanes, or dot-product
        lanes with an adder tree.
    rows, cols, group, tree_regs : int
        Array style: its shape (0: :func:`default_shape` of ``lanes``), rows per result beat (0:
        :func:`default_group`), and adder levels between pipeline registers.

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
    #: ``array`` (R x C array of row trees), ``output`` (output-stationary lanes) or ``dot``
    #: (dot-product lanes, one row at a time).
    lane_style: str = "array"
    #: Array style: rows R (0: the default shape of ``lanes``).
    rows: int = 0
    #: Array style: columns C (0: the default shape of ``lanes``).
    cols: int = 0
    #: Array style: rows per result beat (0: :func:`default_group`).
    group: int = 0
    #: Array style: adder levels between pipeline registers in the row trees.
    tree_regs: int = 1

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
        check_int("Array rows", self.rows, 0, MAX_LANES)
        check_int("Array columns", self.cols, 0, MAX_COLS)
        check_int("Result group", self.group, 0, MAX_LANES)
        check_int("Tree levels per register", self.tree_regs, 1, MAX_TREE_REGS)
        if self.lane_style != "array":
            if self.lanes > MAX_LANES_1D:
                raise ValueError(f"{self.lane_style.capitalize()} lanes go up to {MAX_LANES_1D}, not "
                                 f"{self.lanes}: use the array style for more")
            if self.rows or self.cols or self.group:
                raise ValueError(f"Rows, columns and result group are parameters of the array style, "
                                 f"not of {self.lane_style!r} lanes")
            return
        if self.sharing != "buffer":
            raise ValueError("The array reads its activations from the buffer: sharing must be 'buffer'")
        rows, cols = self.rows, self.cols
        if rows and cols:
            if rows * cols != self.lanes:
                raise ValueError(f"Array shape {rows} x {cols} gives {rows * cols} MACs per cycle, "
                                 f"not the {self.lanes} lanes asked for")
        elif rows or cols:
            given = rows or cols
            if self.lanes % given:
                raise ValueError(f"Lane count {self.lanes} is not a multiple of the "
                                 f"{'rows' if rows else 'columns'} {given}")
            rows, cols = (rows, self.lanes // rows) if rows else (self.lanes // cols, cols)
            if cols > MAX_COLS:
                raise ValueError(f"Array columns must be at most {MAX_COLS}, not {cols}")
        else:
            rows, cols = default_shape(self.lanes)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "cols", cols)
        if self.group > rows:
            raise ValueError(f"Result group must be at most the {rows} rows, not {self.group}")
        object.__setattr__(self, "group", self.group or default_group(rows, cols))

    @classmethod
    def array(cls, rows: int, cols: int, **kw) -> "EngineConfig":
        """An array-style configuration of ``rows x cols``."""
        return cls(lanes=rows * cols, lane_style="array", rows=rows, cols=cols, **kw)

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
        (:func:`fairyhw.model.widths.accumulator_width`)."""
        from ..model.widths import accumulator_width
        return accumulator_width(self.max_in)

    @property
    def row_tile(self) -> int:
        """Rows computed together (the result order's tile): ``lanes`` for output lanes, 1 for dot
        lanes, the array's ``rows``."""
        return {"output": self.lanes, "dot": 1, "array": self.rows}[self.lane_style]

    @property
    def banks(self) -> list[int]:
        """The array's activation-buffer banks: the columns of each (:data:`BANK_COLS`, the last one
        fewer)."""
        return [min(BANK_COLS, self.cols - c0) for c0 in range(0, self.cols, BANK_COLS)]

    @property
    def act_per_beat(self) -> int:
        """Activations an ``act`` beat carries: the array's ``cols``, else 1."""
        return self.cols if self.lane_style == "array" else 1

    @property
    def res_per_beat(self) -> int:
        """Rows a ``res`` beat carries: the array's ``group``, else 1."""
        return self.group if self.lane_style == "array" else 1

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
    "output": EngineConfig(lane_style="output"),
    "dot": EngineConfig(lane_style="dot"),
    "ifairy": EngineConfig(mode="ifairy", stages=1),
    "u280": EngineConfig(lanes=6400, rows=50, cols=128),
}


# -- command lines --------------------------------------------------------------------------------

#: Command-line help of each parameter (the options are ``--`` and the name with dashes).
HELP = {
    "lanes": "complex MACs per cycle (the array style picks a ROWS x COLS shape for it)",
    "max_in": "largest complex input length K (activation buffer depth)",
    "max_out": "largest complex output row count",
    "stages": "residual stages T (1 = W1, 2 = W2)",
    "mode": "fairy2i: U x + W conj(x) per stage; ifairy: W conj(x)",
    "accumulate": "split: 4 exact sums per row; merged: 2 sums of a swap-mux complex accumulator",
    "sharing": "buffer: activations loaded once per layer; stream: sent beside every weight beat",
    "lane_style": "array: R x C array of row trees; output: output-stationary lanes; dot: one "
                  "dot-product row at a time",
    "rows": "array rows R (0: picked from --lanes)",
    "cols": "array columns C, activations read per cycle (0: picked from --lanes)",
    "group": "array rows per result beat (0: enough that results never stall the array at K=2048)",
    "tree_regs": "array adder-tree levels between pipeline registers",
}
#: The default engine of the command lines (the generator's ``--lanes 64`` design).
DEFAULT = EngineConfig()


def add_arguments(parser, default: EngineConfig = DEFAULT, only=None) -> None:
    """Add one ``--option`` per :class:`EngineConfig` field (or per field named in ``only``) to an
    argparse parser, with the bounds checked at parse time and the defaults of ``default`` shown in
    ``--help``."""
    from ..cli import int_in
    bounds = {"lanes": (1, MAX_LANES), "max_in": (1, MAX_DIM), "max_out": (1, MAX_DIM),
              "stages": (1, MAX_STAGES), "rows": (0, MAX_LANES), "cols": (0, MAX_COLS),
              "group": (0, MAX_LANES), "tree_regs": (1, MAX_TREE_REGS)}
    choices = {"mode": tuple(MODES), "accumulate": tuple(ACCUMULATE), "sharing": SHARING,
               "lane_style": LANE_STYLES}
    metavar = {"lanes": "N", "max_in": "K", "max_out": "ROWS", "stages": "T", "rows": "R", "cols": "C",
               "group": "G", "tree_regs": "L"}
    for f in fields(EngineConfig):
        if only is not None and f.name not in only:
            continue
        opt = "--" + f.name.replace("_", "-")
        dflt = getattr(default, f.name)
        if f.name in ("rows", "cols", "group"):
            dflt = 0          # derived from --lanes unless given
        if f.name == "lanes":
            parser.add_argument(opt, metavar="N", type=int_in(1, MAX_LANES, "lanes"),
                                default=argparse.SUPPRESS,
                                help=f"{HELP['lanes']} (default: {dflt}, or ROWS x COLS when both "
                                     "are given)")
            continue
        if f.name in bounds:
            lo, hi = bounds[f.name]
            parser.add_argument(opt, metavar=metavar[f.name], type=int_in(lo, hi, opt[2:]), default=dflt,
                                help=HELP[f.name])
        else:
            parser.add_argument(opt, choices=choices[f.name], default=dflt, help=HELP[f.name])


def from_arguments(args) -> EngineConfig:
    """The :class:`EngineConfig` of parsed arguments (fields without an option take their defaults);
    a conflict is one :class:`FairyError`."""
    params = {f.name: getattr(args, f.name, f.default) for f in fields(EngineConfig)}
    params["lanes"] = getattr(args, "lanes", None)
    if params["lanes"] is None:
        both = params["lane_style"] == "array" and params["rows"] and params["cols"]
        params["lanes"] = params["rows"] * params["cols"] if both else DEFAULT.lanes
    if params["lane_style"] != "array":
        for k in ("rows", "cols", "group"):
            if params[k]:
                raise FairyError(f"--{k} is a parameter of the array style, not of "
                                 f"--lane-style {params['lane_style']}")
    try:
        return EngineConfig(**params)
    except (TypeError, ValueError) as e:
        raise FairyError(str(e)) from None


# -- the system top -------------------------------------------------------------------------------

#: Memory data widths (bits) the system top's AXI4 masters accept.
DATA_WIDTHS = (32, 64, 128, 256, 512)
#: Bytes of one layer descriptor in memory (16 little-endian 32-bit words, :data:`DESCRIPTOR`).
DESCRIPTOR_BYTES = 64
#: The descriptor's 32-bit words, in order (``_lo``/``_hi``: a 64-bit byte address's halves).
DESCRIPTOR = ("k", "rows", "act_lo", "act_hi", "wgt_lo", "wgt_hi", "wgt_stride", "res_lo", "res_hi",
              "flags", "reserved0", "reserved1", "reserved2", "reserved3", "reserved4", "reserved5")
#: Bits of a result sum in memory: every sum sign-extended to a little-endian int32.
RESULT_SUM_BITS = 32
#: The system top's error codes (the ``status.error_code`` field), each with its meaning.
ERRORS = {
    0: "none",
    1: "the descriptor list's address is not a multiple of 64 or its count is 0",
    2: "a descriptor's k is 0 or above max_in",
    3: "a descriptor's rows is 0 or above max_out",
    4: "a descriptor's address or weight stride is not a multiple of the memory word",
    5: "a transfer runs past the top of the address space (addr_width bits)",
    6: "a read was answered with an AXI error response",
    7: "a write was answered with an AXI error response",
}


def slot_bits(width: int, data_width: int) -> int:
    """Bits one item of ``width`` bits occupies in memory of ``data_width``-bit words: the next power
    of two (at least 8) when it fits in a word, so that a word holds a whole number of items; else a
    whole number of words."""
    if width <= data_width:
        return max(8, 1 << (width - 1).bit_length())
    return -(-width // data_width) * data_width


def memory_words(items: int, width: int, data_width: int) -> int:
    """Memory words of ``items`` items of ``width`` bits laid out from a word boundary."""
    return -(-items * slot_bits(width, data_width) // data_width)


@dataclass(frozen=True)
class SystemConfig:
    """The system top around an engine: its memory interface.

    Parameters
    ----------
    engine : EngineConfig
        The engine it wraps (any lane style; its activations must come from the buffer).
    data_width : int
        Bits of a memory word on every AXI4 master, one of :data:`DATA_WIDTHS`.
    weight_ports : int
        AXI4 read masters for the weight stream (0: the fewest that carry one weight word a cycle).
        Port ``p`` reads bits ``[p*s, (p+1)*s)`` of every weight word (``s = ceil(2*lanes / ports)``)
        from its own region.
    addr_width : int
        Bits of a byte address, 12 to 64.
    max_burst : int
        Beats of an AXI4 burst at most (1 to 256).
    outstanding : int
        Bursts a read master keeps in flight at most (1 to 64).
    fifo_depth : int
        Words of each read master's FIFO (0: ``2 * max_burst * outstanding``, enough for its bursts
        in flight).
    """

    engine: EngineConfig = EngineConfig()
    data_width: int = 256
    weight_ports: int = 0
    addr_width: int = 64
    max_burst: int = 16
    outstanding: int = 8
    fifo_depth: int = 0

    def __post_init__(self):
        if not isinstance(self.engine, EngineConfig):
            raise TypeError(f"engine must be an EngineConfig, not {self.engine!r}")
        if self.engine.sharing != "buffer":
            raise ValueError("The system top loads activations into the engine's buffer: sharing "
                             "must be 'buffer'")
        if self.data_width not in DATA_WIDTHS:
            raise ValueError(f"Memory data width must be one of {', '.join(map(str, DATA_WIDTHS))} "
                             f"bits, not {self.data_width!r}")
        check_int("Weight ports", self.weight_ports, 0, 64)
        check_int("Address width", self.addr_width, HALF, 64)
        check_int("Burst length", self.max_burst, 1, 256)
        check_int("Outstanding bursts", self.outstanding, 1, 64)
        check_int("FIFO depth", self.fifo_depth, 0, 1 << 16)
        wbits = 2 * self.engine.lanes
        if not self.weight_ports:
            object.__setattr__(self, "weight_ports", min(64, -(-wbits // self.data_width)))
        if self.weight_ports > wbits:
            raise ValueError(f"Weight ports must be at most the weight word's {wbits} bits, not "
                             f"{self.weight_ports}")
        if not self.fifo_depth:
            object.__setattr__(self, "fifo_depth", 2 * self.max_burst * self.outstanding)
        if self.fifo_depth < self.max_burst:
            raise ValueError(f"FIFO depth ({self.fifo_depth}) must hold a burst ({self.max_burst} beats)")
        if self.fifo_depth < BLOCK_FIFO_MIN_DEPTH:
            raise ValueError(f"FIFO depth must be at least {BLOCK_FIFO_MIN_DEPTH} words, "
                             f"not {self.fifo_depth}")

    # -- the memory layout ----------------------------------------------------------------------

    @property
    def word_bytes(self) -> int:
        return self.data_width // 8

    @property
    def slice_bits(self) -> int:
        """Bits of a weight word each weight port carries."""
        return -(-2 * self.engine.lanes // self.weight_ports)

    @property
    def act_bits(self) -> int:
        """Bits of an activation beat (16 an element)."""
        return 16 * self.engine.act_per_beat

    @property
    def result_bits(self) -> int:
        """Bits of a result beat in memory: its rows' sums, :data:`RESULT_SUM_BITS` each."""
        return RESULT_SUM_BITS * len(self.engine.parts) * self.engine.res_per_beat

    def pass_words(self, k: int) -> int:
        """Weight words of one pass over an input of ``k`` elements (the engine's stream layout)."""
        e = self.engine
        return -(-k // {"array": e.cols, "dot": e.lanes, "output": 1}[e.lane_style])

    def act_items(self, k: int) -> int:
        """Activation beats of an input of ``k`` elements."""
        return -(-k // self.engine.act_per_beat)

    def pass_memory_words(self, k: int) -> int:
        """Memory words of one pass's weight slices on each weight port (a pass starts on a word)."""
        return memory_words(self.pass_words(k), self.slice_bits, self.data_width)

    @property
    def command_beats_bits(self) -> int:
        """Bits of a read master's command length: the most memory words one command reads (a
        descriptor, a layer's activations or one pass of a weight port, at ``max_in`` inputs)."""
        k = self.engine.max_in
        return max(DESCRIPTOR_BYTES // self.word_bytes, 1, self.act_memory_words(k),
                   self.pass_memory_words(k)).bit_length()

    def act_memory_words(self, k: int) -> int:
        return memory_words(self.act_items(k), self.act_bits, self.data_width)

    def result_memory_words(self, rows: int) -> int:
        from .timing import result_beats
        return memory_words(result_beats(self.engine, rows), self.result_bits, self.data_width)

    def to_json(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "engine"}
        return {"engine": self.engine.to_json(), **d}

    @classmethod
    def from_json(cls, obj) -> "SystemConfig":
        """The inverse of :meth:`to_json`."""
        if not isinstance(obj, dict) or "engine" not in obj:
            raise ValueError(f"a system configuration must be a JSON object with an engine, not {obj!r}")
        rest = {k: v for k, v in obj.items() if k != "engine"}
        return cls(engine=EngineConfig.from_json(obj["engine"]), **rest)
