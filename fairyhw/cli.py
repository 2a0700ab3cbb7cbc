"""Argument types shared by the command lines: one clear message per bad value (argparse exits 2)."""

from __future__ import annotations

import argparse
import math

__all__ = ["ArgumentParser", "int_at_least", "positive_int", "nonneg_int", "positive_float", "int_in",
           "float_in"]


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


def float_in(lo: float, hi: float, what: str, unit: str = ""):
    """A finite number in ``[lo, hi]`` (a physical range); the message names the quantity and unit."""
    u = f" {unit}" if unit else ""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, not {text!r}") from None
        if not (math.isfinite(v) and lo <= v <= hi):
            raise argparse.ArgumentTypeError(f"{what} must be from {lo:g} to {hi:g}{u}, not {text}")
        return v
    return parse


#: The name the running command was called by when it came through the ``fairyhw`` dispatcher
#: (``fairyhw gen``); its parsers show it in place of their ``python -m fairyhw.gen``.
invoked_as: str | None = None


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one line for a bad argument: ``error: MESSAGE (see PROG --help)``, exit status 2;
    ``prog`` is the dispatcher's name for the command when it came through ``fairyhw``."""

    def __init__(self, *args, **kwargs):
        if invoked_as:
            kwargs["prog"] = invoked_as
        super().__init__(*args, **kwargs)

    def error(self, message):
        from .outputs import show
        self.exit(2, f"error: {show(message)} (see {self.prog} --help)\n")
