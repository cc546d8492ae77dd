"""Small numeric helpers shared by concepts that must not depend on one another."""

from __future__ import annotations

import math
from collections.abc import Sequence


def quantile(ordered: Sequence[float], q: float) -> float:
    """The `q` quantile of already sorted values, by linear interpolation between the
    two nearest ranks (numpy's default method, and its rounding), without re-sorting.

    Between an infinite and a finite neighbour the interpolation is undefined; the
    nearer neighbour is the answer. NaN for no values.
    """
    n = len(ordered)
    if n == 0:
        return math.nan
    pos = q * (n - 1)
    below = math.floor(pos)
    above = min(below + 1, n - 1)
    frac = pos - below
    a, b = float(ordered[below]), float(ordered[above])
    value = a + (b - a) * frac if frac < 0.5 else b - (b - a) * (1 - frac)
    return value if math.isfinite(value) else (a if frac < 0.5 else b)
