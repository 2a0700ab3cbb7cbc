"""The cycle model's linear-layer cycles equal the cycles measured in co-simulation, exactly.

Runs after ``test_engine.py`` (pytest collects files in name order: keep this name after it) and reads its results file."""

import json
from pathlib import Path

import pytest

from fairyhw.perf import HardwareConfig, MacArray

CYCLES = Path(__file__).resolve().parent.parent / "sim_build" / "cycles.json"


def test_cycle_model_equals_measured_cycles():
    if not CYCLES.exists():
        pytest.fail("no co-simulation results: run sim/test_engine.py first")
    runs = [r for r in json.loads(CYCLES.read_text())["runs"]
            if not r["stalls"] and r["mode"] == "fairy2i"]
    assert {r["lanes"] for r in runs} >= {1, 8, 64}
    assert {r.get("lane_style", "output") for r in runs} == {"output", "dot"}
    for r in runs:
        hw = HardwareConfig(lanes=r["lanes"], stages=r["stages"], sharing=r["sharing"],
                            lane_style=r.get("lane_style", "output"))
        assert MacArray(hw).cycles(r["k"], r["rows"]) == r["cycles"], r
