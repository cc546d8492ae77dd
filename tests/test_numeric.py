import math

import numpy as np
import pytest

from assay.numeric import quantile


@pytest.mark.parametrize("q", [0.0, 0.01, 0.25, 0.5, 0.73, 0.99, 1.0])
@pytest.mark.parametrize("n", [1, 2, 5, 100])
def test_quantile_matches_numpy(q: float, n: int) -> None:
    values = sorted(np.random.default_rng(n).normal(size=n).tolist())
    assert quantile(values, q) == np.quantile(values, q)


def test_an_infinite_neighbour_gives_the_nearer_value_and_no_values_give_nan() -> None:
    assert quantile([1.0, math.inf], 0.25) == 1.0
    assert quantile([1.0, math.inf], 0.75) == math.inf
    assert math.isnan(quantile([], 0.5))
