"""The hardware: its configuration and timing (pure Python), the Amaranth engine, the host driver.

``fairyhw.hw.config`` and ``fairyhw.hw.timing`` import no HDL stack; the Amaranth parts
(``Engine``, ``Lane``) load on first use.
"""

__all__ = ["ACCUMULATE", "ACT_LAYOUT", "MODES", "Engine", "Lane", "engine_cycles"]


def __getattr__(name):
    if name in ("ACT_LAYOUT", "Engine", "Lane"):
        from . import engine
        return getattr(engine, name)
    if name in ("ACCUMULATE", "MODES"):
        from . import config
        return getattr(config, name)
    if name == "engine_cycles":
        from .timing import engine_cycles
        return engine_cycles
    raise AttributeError(f"module 'fairyhw.hw' has no attribute {name!r}")
