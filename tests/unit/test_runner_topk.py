"""The runner's per-token top-k: the same values as a full selection, deterministic order."""
from __future__ import annotations

import numpy as np
import pytest

from runner.child import _Dist, top_indices


@pytest.mark.parametrize("n", [49152, 49153, 32000, 151936, 1000, 50])
@pytest.mark.parametrize("k", [1, 2, 10, 20])
def test_top_indices_match_a_full_selection(n, k):
    rng = np.random.default_rng(n * 100 + k)
    for trial in range(20):
        x = (rng.standard_normal(n) * rng.uniform(0.1, 10)).astype(np.float32)
        if trial % 2:
            x[rng.integers(0, n, 30)] = x.max()  # ties at the top
        got = np.sort(x[top_indices(x, k)])
        assert np.array_equal(got, np.sort(np.partition(x, n - k)[n - k:]))


def test_non_finite_logits_fall_back_to_a_full_selection():
    x = np.zeros(49152, dtype=np.float32)
    x[7], x[9] = np.inf, 3.0
    assert set(top_indices(x, 2)) == {7, 9}


def test_top_is_ordered_by_logit_then_token_id():
    x = np.zeros(49152, dtype=np.float32)
    x[[500, 30, 40000]] = 5.0
    x[12] = 4.0
    top = _Dist(x).top(4)
    assert [i for i, _ in top] == [30, 500, 40000, 12]
    assert top[0][1] == top[1][1] > top[3][1]
