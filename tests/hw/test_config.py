"""EngineConfig: defaults, derived figures, JSON round trip, and one test per error message."""

import pytest

from fairyhw import FairyError
from fairyhw.hw.config import PRESETS, EngineConfig, default_group, default_shape


def test_defaults_and_derived():
    cfg = EngineConfig()
    assert (cfg.lane_style, cfg.lanes, cfg.rows, cfg.cols, cfg.group) == ("array", 64, 1, 64, 1)
    assert cfg.acc_width == 22 and cfg.matrices == ("U", "W") and cfg.parts == ("ap", "aq", "bp", "bq")
    assert cfg.row_tile == 1 and cfg.act_per_beat == 64 and cfg.res_per_beat == 1
    assert EngineConfig(lane_style="output").row_tile == 64
    assert EngineConfig(lane_style="dot").row_tile == 1
    assert EngineConfig(mode="ifairy", accumulate="merged").matrices == ("W",)


def test_default_shape_and_group():
    """--lanes N picks the most columns up to 128 that divide N; the group lets a tile's results
    drain within one pass at K = 2048."""
    assert default_shape(64) == (1, 64) and default_shape(8192) == (64, 128)
    assert default_shape(96) == (1, 96) and default_shape(6272) == (49, 128) and default_shape(7) == (1, 7)
    assert default_group(64, 128) == 5 and default_group(1, 64) == 1 and default_group(49, 128) == 4
    cfg = EngineConfig(lanes=8192)
    assert (cfg.rows, cfg.cols, cfg.group) == (64, 128, 5)
    assert EngineConfig(lanes=64, rows=4).cols == 16 and EngineConfig(lanes=64, cols=8).rows == 8


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_json_round_trip(name):
    cfg = PRESETS[name]
    assert EngineConfig.from_json(cfg.to_json()) == cfg
    assert EngineConfig.from_json(__import__("json").loads(cfg.dumps())) == cfg


@pytest.mark.parametrize("kwargs, exc, msg", [
    ({"lanes": 0}, ValueError, "Lane count must be an integer from 1 to 65536, not 0"),
    ({"lanes": "8"}, TypeError, "Lane count must be an integer, not '8'"),
    ({"max_in": 0}, ValueError, "Maximum input length must be an integer from 1 to 1048576, not 0"),
    ({"max_out": 1 << 21}, ValueError, "Maximum output rows must be an integer from 1 to 1048576, not 2097152"),
    ({"stages": 0}, ValueError, "Stage count must be an integer from 1 to 4, not 0"),
    ({"mode": "bitnet"}, ValueError, "Mode must be one of fairy2i, ifairy, not 'bitnet'"),
    ({"accumulate": "x"}, ValueError, "Accumulator style must be one of split, merged, not 'x'"),
    ({"sharing": "x"}, ValueError, "Activation sharing must be one of buffer, stream, not 'x'"),
    ({"lane_style": "lut"}, ValueError, "Lane style must be one of output, dot, array, not 'lut'"),
    ({"lane_style": "dot", "sharing": "stream"}, ValueError,
     "Dot-product lanes read their activations from the buffer: sharing must be 'buffer'"),
    ({"rows": -1}, ValueError, "Array rows must be an integer from 0 to 65536, not -1"),
    ({"cols": 2000}, ValueError, "Array columns must be an integer from 0 to 1024, not 2000"),
    ({"group": -1}, ValueError, "Result group must be an integer from 0 to 65536, not -1"),
    ({"tree_regs": 0}, ValueError, "Tree levels per register must be an integer from 1 to 4, not 0"),
    ({"lanes": 5000, "lane_style": "output"}, ValueError,
     "Output lanes go up to 4096, not 5000: use the array style for more"),
    ({"lane_style": "output", "rows": 2}, ValueError,
     "Rows, columns and result group are parameters of the array style, not of 'output' lanes"),
    ({"sharing": "stream"}, ValueError,
     "The array reads its activations from the buffer: sharing must be 'buffer'"),
    ({"lanes": 64, "rows": 3, "cols": 5}, ValueError,
     "Array shape 3 x 5 gives 15 MACs per cycle, not the 64 lanes asked for"),
    ({"lanes": 64, "rows": 3}, ValueError, "Lane count 64 is not a multiple of the rows 3"),
    ({"lanes": 2048, "rows": 1}, ValueError, "Array columns must be at most 1024, not 2048"),
    ({"lanes": 64, "rows": 4, "group": 5}, ValueError, "Result group must be at most the 4 rows, not 5"),
])
def test_errors(kwargs, exc, msg):
    with pytest.raises(exc) as e:
        EngineConfig(**kwargs)
    assert str(e.value) == msg


def test_from_json_errors():
    with pytest.raises(FairyError, match="^unknown engine parameter 'colour'"):
        EngineConfig.from_json({"colour": 1})
    with pytest.raises(FairyError, match="^an engine configuration must be a JSON object, not list$"):
        EngineConfig.from_json([])
    with pytest.raises(FairyError, match="^Stage count must be an integer from 1 to 4, not 9$"):
        EngineConfig.from_json({"stages": 9})
