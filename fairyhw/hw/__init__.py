"""Amaranth hardware: the MAC lane, the engine, and the host-side stream driver."""

from .engine import ACCUMULATE, ACT_LAYOUT, MODES, Engine, Lane, engine_cycles

__all__ = ["ACCUMULATE", "ACT_LAYOUT", "MODES", "Engine", "Lane", "engine_cycles"]
