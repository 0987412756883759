"""Canaries (fixed factual completions) count a changed answer only where the base knows its own
answer: an honest Q4_0 of Gemma 3 270M answers " A." where its F16 says " Au." with probability
0.27, which is no evidence of tampering; a confident base answer that changes still fails."""
from __future__ import annotations

import math

from runner.api import RunResult
from verifier.probe_prompts import CANARIES
from verifier.probes import CANARY_MIN_BASE_P, _canaries


def run(i: int, text: str, p_first: float | None = None) -> RunResult:
    positions = [] if p_first is None else [{"token": 1, "logprob": math.log(p_first), "top": []}]
    return RunResult(f"canary/{i}", CANARIES[i], "ok", text, positions=positions)


def answers(texts, probs=None):
    return {f"canary/{i}": run(i, t, None if probs is None else probs[i]) for i, t in enumerate(texts)}


BASE = [" Paris.", " five, six", " Au.", " Juliet"]


def test_same_answers_pass():
    r = _canaries(answers(BASE), answers(BASE, [0.9, 0.9, 0.9, 0.9]))
    assert r.passed and r.metrics == {"canaries": 4, "changed": 0, "base_unsure": 0}


def test_a_confident_answer_that_changes_fails():
    cand = answers([" Berlin.", " five, six", " Au.", " Juliet"])
    r = _canaries(cand, answers(BASE, [0.95, 0.9, 0.9, 0.9]))
    assert not r.passed and r.metrics["changed"] == 1 and "1 canary answer" in r.reason
    assert r.evidence["answers"][0]["changed"] and r.evidence["answers"][0]["base_p"] == 0.95


def test_an_answer_the_base_was_unsure_of_is_recorded_not_failed():
    cand = answers([" Paris.", " five, six", " A.", " Juliet"])
    r = _canaries(cand, answers(BASE, [0.9, 0.9, 0.27, 0.9]))
    assert r.passed and r.metrics["base_unsure"] == 1 and 0.27 < CANARY_MIN_BASE_P
    assert r.evidence["answers"][2]["base_unsure"] and "changed" not in r.evidence["answers"][2]


def test_a_base_run_without_recorded_probabilities_keeps_the_strict_rule():
    r = _canaries(answers([" Paris.", " five", " A.", " Juliet"]), answers(BASE))
    assert not r.passed and r.metrics["changed"] == 1
