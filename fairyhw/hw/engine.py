"""The engine: one quantized layer on a multiplier-free complex MAC array, behind four streams.

:class:`Engine` is the component a design instantiates (its ports are the same for every style); its
``lane_style`` picks the assembly inside:

* ``array`` (the default, :mod:`fairyhw.hw.array`): an R x C array of pipelined row trees, built of
  a sequencer (:mod:`fairyhw.hw.sequencer`), a banked activation buffer (:mod:`fairyhw.hw.buffer`),
  the shared pair values and row trees, root accumulators and a result buffer;
* ``output`` and ``dot`` (:mod:`fairyhw.hw.lanes`): output-stationary lanes with a shadow register,
  or dot-product lanes with one adder tree.

Integer contract (``docs/design.md``, :mod:`fairyhw.model.golden`)
    Split accumulators give, per row and pass, ``(Σap, Σaq, Σbp, Σbq)`` exactly as
    :func:`fairyhw.model.golden.integer_sums`; merged ones give :func:`fairyhw.model.golden.merge_sums` of them.
    For the W matrix (and every Fairy±i pass) the engine computes on ``conj(x)``. Scales are applied on
    the host (:func:`fairyhw.hw.driver.rescale_results`).
"""

from __future__ import annotations

from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from . import array, lanes
from .buffer import KEEP
from .config import EngineConfig, validating
from .lanes import DotLane, Lane
from .streams import ACT_LAYOUT, act_layout, cmd_layout, res_layout, sums_layout, wgt_shape
from .timing import latency, result_beats

__all__ = ["ACT_LAYOUT", "KEEP", "Lane", "DotLane", "Engine", "STYLES"]

#: Lane style -> the function that assembles an engine of that style.
STYLES = {"array": array.assemble, "output": lanes.assemble_output, "dot": lanes.assemble_dot}


class Engine(wiring.Component):
    """Runs one quantized layer: ``y = Σ_t U_t x + W_t conj(x)`` (Fairy2i) or ``Σ_t W_t conj(x)`` (Fairy±i).

    Parameters
    ----------
    lanes : int
        MAC lanes (rows computed in parallel), 1 to 4096.
    max_in, max_out : int
        Largest complex input length K and output row count accepted at run time.
    stages : int
        Residual stages T, 1 to 4.
    mode : {"fairy2i", "ifairy"}
        Matrices per stage: U then W, or W alone.
    accumulate : {"split", "merged"}
        Four integer sums per row (exact for any scales) or the two of a swap-mux complex accumulator.
    sharing : {"buffer", "stream"}
        Activation buffer of ``max_in`` entries loaded once per layer and broadcast, or no buffer: the
        host streams the activation beside every weight beat (output-stationary lanes only).
    lane_style : {"array", "output", "dot"}
        An R x C array of row trees (:mod:`fairyhw.hw.array`), output-stationary lanes (one row
        each) or dot-product lanes (one column each, adder tree) (:mod:`fairyhw.hw.lanes`).

    Streams (valid/ready, ``amaranth.lib.stream``)
    ----------------------------------------------
    ``cmd`` (in): ``{k, rows}`` starts a layer (``1 <= k <= max_in``, ``1 <= rows <= max_out``), accepted
    when idle. ``act`` (in): then ``k`` beats of ``{p, q}`` (``sharing="stream"``: one act beat with
    every wgt beat instead, the vector resent for each pass; the two streams move together). ``wgt``
    (in): then the codes in the
    :mod:`fairyhw.model.pack` stream layout (``stream_words``; ``stream_words_dot`` for dot lanes), ``2*lanes``
    bits a beat. ``res`` (out): one beat per (row tile, stage, matrix, row) in that order (the row tile
    is ``row_tile`` rows: ``lanes``, or 1 for dot lanes), ``{sums, last}``, ``last`` on the layer's final
    beat.
    ``busy`` is high from the command to the last result.
    """

    def __init__(self, config: EngineConfig | None = None, **params):
        with validating(self):
            if config is None:
                config = EngineConfig(**params)
            elif params:
                raise TypeError("Engine takes an EngineConfig or keyword parameters, not both")
            elif not isinstance(config, EngineConfig):
                raise TypeError(f"Engine configuration must be an EngineConfig, not {config!r}")
        self._cfg = config
        super().__init__({
            "cmd": In(stream.Signature(cmd_layout(config))),
            "act": In(stream.Signature(act_layout(config))),
            "wgt": In(stream.Signature(wgt_shape(config))),
            "res": Out(stream.Signature(res_layout(config))),
            "busy": Out(1),
        })

    config = property(lambda self: self._cfg, doc="The :class:`EngineConfig`.")
    lanes = property(lambda self: self._cfg.lanes, doc="MAC lanes (complex MACs per cycle).")
    max_in = property(lambda self: self._cfg.max_in, doc="Largest input length K.")
    max_out = property(lambda self: self._cfg.max_out, doc="Largest output row count.")
    stages = property(lambda self: self._cfg.stages, doc="Residual stages T.")
    mode = property(lambda self: self._cfg.mode, doc="'fairy2i' or 'ifairy'.")
    accumulate = property(lambda self: self._cfg.accumulate, doc="'split' or 'merged'.")
    sharing = property(lambda self: self._cfg.sharing, doc="'buffer' or 'stream'.")
    lane_style = property(lambda self: self._cfg.lane_style, doc="'output', 'dot' or 'array'.")

    row_tile = property(lambda self: self._cfg.row_tile, doc=EngineConfig.row_tile.__doc__)
    matrices = property(lambda self: self._cfg.matrices, doc=EngineConfig.matrices.__doc__)
    parts = property(lambda self: self._cfg.parts, doc=EngineConfig.parts.__doc__)
    acc_width = property(lambda self: self._cfg.acc_width, doc=EngineConfig.acc_width.__doc__)

    cmd_layout = property(lambda self: cmd_layout(self._cfg), doc=cmd_layout.__doc__)
    sums_layout = property(lambda self: sums_layout(self._cfg), doc=sums_layout.__doc__)
    res_layout = property(lambda self: res_layout(self._cfg), doc=res_layout.__doc__)

    def result_count(self, rows: int) -> int:
        """Result beats of a layer with ``rows`` rows (see :func:`~fairyhw.hw.timing.result_beats`)."""
        return result_beats(self._cfg, rows)

    def latency(self, k: int, rows: int) -> int:
        """Cycles of one layer, command to last result, with no stalls (see
        :func:`fairyhw.hw.timing.latency`)."""
        return latency(self._cfg, k, rows)

    def elaborate(self, platform):
        return STYLES[self._cfg.lane_style](self)
