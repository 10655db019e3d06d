"""argparse value types shared by the subcommands: a bad value is a one-line usage error."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number_argument(kind: type[int] | type[float], minimum: float, what: str,
                    unit: str = "") -> Callable[[str], float]:
    """A type= for argparse: ``kind(text)``, finite and at least ``minimum``.

    ``what`` names the value in the message ("--wait"), ``unit`` follows the numbers
    (" seconds"), so the operator reads e.g. "--wait must be a number of seconds, got 'x'".
    """

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number{' of' + unit if unit else ''},"
                                             f" got {text!r}") from None
        if not math.isfinite(value) or value < minimum:
            raise argparse.ArgumentTypeError(f"{what} must be at least {minimum:g}{unit}, got {text!r}")
        return value

    return parse
