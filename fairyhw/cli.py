"""Argument types shared by the command lines: one clear message per bad value (argparse exits 2)."""

from __future__ import annotations

import argparse
import math

__all__ = ["int_at_least", "positive_int", "nonneg_int", "positive_float", "int_in"]


def int_at_least(lo: int, what: str):
    """An integer ``>= lo``; the message says ``expected a WHAT integer, not VALUE``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, not {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, not {v}")
        return v
    return parse


positive_int = int_at_least(1, "positive")
nonneg_int = int_at_least(0, "non-negative")


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
    return v


def int_in(lo: int, hi: int, what: str):
    """An integer in ``[lo, hi]``; the message names the option's quantity."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, not {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{what} must be from {lo} to {hi}, not {v}")
        return v
    return parse
