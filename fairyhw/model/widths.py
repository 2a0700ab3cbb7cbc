"""The integer contract's widths, in pure Python (no torch): what the hardware generator needs from
the model side without importing it (:mod:`fairyhw.model.golden` re-exports them)."""

from __future__ import annotations

import math

from .. import FairyError

__all__ = ["accumulator_width"]


def accumulator_width(k: int) -> int:
    """Signed accumulator bits that can never overflow for an input length of ``k`` complex elements.

    Each term is ±p or ±q with p, q in [-128, 127], so ``|sum| <= 128*k``; ``8 + ceil(log2 k) + 1``
    bits hold ``[-2**(7 + c) * 2, 2**(8 + c) - 1]`` which covers it (one bit to spare when k is a power
    of two). The same bound holds for merged (swap-mux) accumulators, since each element adds to one
    of a, b only.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise FairyError(f"input length must be a positive integer, not {k!r}")
    return 8 + math.ceil(math.log2(k)) + 1 if k > 1 else 9
