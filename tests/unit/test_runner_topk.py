"""The runner's per-token top-k: exactly a full sort's first k (by logit, then token id)."""
from __future__ import annotations

import numpy as np
import pytest

from runner.child import distribution, top_indices


def full_sort_top(x, k):
    return np.lexsort((np.arange(x.shape[0]), -x))[:k]


@pytest.mark.parametrize("n", [49152, 49153, 32000, 151936, 1000, 50, 3])
@pytest.mark.parametrize("k", [1, 2, 10, 20])
def test_top_indices_equal_a_full_sort(n, k):
    rng = np.random.default_rng(n * 100 + k)
    for trial in range(20):
        x = (rng.standard_normal(n) * rng.uniform(0.1, 10)).astype(np.float32)
        if trial % 2:
            x[rng.integers(0, n, 30)] = x.max()  # ties at the top
        if trial % 3 == 0:
            x = np.round(x)  # many ties everywhere, the k-th value included
        if trial % 5 == 0:
            x[rng.integers(0, n, n // 2)] = -np.inf  # masked tokens
        assert np.array_equal(top_indices(x, k), full_sort_top(x, k)[: min(k, n)])


def test_ties_at_the_kth_value_go_to_the_lower_ids():
    x = np.zeros(49152, dtype=np.float32)
    x[[40000, 7, 30000, 12]] = 2.0
    x[3] = 5.0
    assert top_indices(x, 3).tolist() == [3, 7, 12]


def test_constant_logits_give_the_first_ids():
    assert top_indices(np.ones(49152, dtype=np.float32), 4).tolist() == [0, 1, 2, 3]


def test_non_finite_logits_fall_back_to_a_full_selection():
    x = np.zeros(49152, dtype=np.float32)
    x[7], x[9] = np.inf, 3.0
    assert set(top_indices(x, 2).tolist()) == {7, 9}


def test_top_is_ordered_by_logit_then_token_id():
    x = np.zeros(49152, dtype=np.float32)
    x[[500, 30, 40000]] = 5.0
    x[12] = 4.0
    top = distribution(x).top(4)
    assert [i for i, _ in top] == [30, 500, 40000, 12]
    assert top[0][1] == top[1][1] > top[3][1]


def test_log_probs_are_the_full_softmax():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(49153) * 4).astype(np.float32)
    d = distribution(x)
    ref = x.astype(np.float64) - np.logaddexp.reduce(x.astype(np.float64))
    for i, lp in d.top(10):
        assert lp == pytest.approx(ref[i], abs=1e-5)
    assert d.lp(123) == pytest.approx(ref[123], abs=1e-5)
    assert np.exp(ref).sum() == pytest.approx(1.0)
