"""High-level runner API: profile -> plan -> one sandboxed child per batch -> BatchResult.

    batch = run_prompts(model_path, [PromptSpec("The capital of France is")], max_tokens=16)
    batch.results[0].text, batch.results[0].tokens, batch.gen_tokens_per_s

A crash, hang or refusal is a status on the result, never an exception.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from assay.core.errors import AssayError

from .hardware import HardwareProfile, detect_hardware
from .plan import ModelTooLarge, Plan, make_plan, model_facts
from .sandbox import run_child


@dataclass
class PromptSpec:
    prompt: str
    id: str | None = None
    chat: bool | None = None            # None: the batch default
    max_tokens: int | None = None       # None: the batch default
    # Teacher forcing: evaluate `score_tokens` after the prompt and report, at each position j
    # (0 = right after the prompt), the top-k and the log-probs of `score_ref_ids[j]`.
    score_tokens: list[int] | None = None
    score_ref_ids: list[list[int]] | None = None


@dataclass
class RunResult:
    id: str | None
    prompt: str
    status: str                          # "ok" | "crashed" | "timed_out" | "refused" | "error"
    text: str = ""
    tokens: list[int] = field(default_factory=list)
    # one entry per generated token: {"token", "logprob", "top": [[id, logprob], ...]}
    positions: list[dict] = field(default_factory=list)
    # teacher-forced positions: {"top": [[id, lp], ...], "ref": [[id, lp], ...]}
    score: list[dict] | None = None
    n_prompt_tokens: int = 0
    stopped: str | None = None           # "eog" | "length"
    prompt_s: float = 0.0
    gen_s: float = 0.0
    error: str | None = None

    def top_next(self) -> list[tuple[int, float]]:
        """Top-k (token id, log-prob) of the first generated position (full softmax)."""
        if self.score:
            return [tuple(x) for x in self.score[0]["top"]]
        return [tuple(x) for x in self.positions[0]["top"]] if self.positions else []


@dataclass
class BatchResult:
    status: str                          # "ok" | "crashed" | "timed_out" | "refused"
    model_path: str
    results: list[RunResult]
    plan: dict | None = None
    hardware: dict | None = None
    load_s: float = 0.0
    elapsed_s: float = 0.0
    prompt_tokens_per_s: float = 0.0
    gen_tokens_per_s: float = 0.0
    error: str | None = None
    stderr_tail: str = ""
    returncode: int | None = None
    peak_rss_bytes: int | None = None    # of the child (Linux)
    peak_vm_bytes: int | None = None     # address space actually used, vs plan address_space_limit

    def to_dict(self) -> dict:
        return asdict(self)


def _tps(n: int, s: float) -> float:
    return round(n / s, 2) if s > 0 else 0.0


def run_prompts(
    model_path: str | os.PathLike,
    prompts: list[PromptSpec | str],
    *,
    max_tokens: int = 32,
    timeout_s: float = 600.0,
    top_k: int = 10,
    chat: bool = False,
    n_ctx: int = 2048,
    seed: int = 0,
    profile: HardwareProfile | None = None,
    plan: Plan | None = None,
    max_threads: int | None = None,
) -> BatchResult:
    """Load `model_path` once in a sandboxed child and run every prompt greedily."""
    model_path = str(model_path)
    specs = [p if isinstance(p, PromptSpec) else PromptSpec(p) for p in prompts]
    for i, s in enumerate(specs):
        if s.id is None:
            s.id = str(i)
    try:
        profile = profile or detect_hardware()
        if plan is None:
            facts = model_facts(model_path)
            kw = {"max_threads": max_threads} if max_threads else {}
            plan = make_plan(profile, facts, n_ctx=n_ctx, **kw)
    except (ModelTooLarge, AssayError, OSError) as exc:
        return BatchResult("refused", model_path, [RunResult(s.id, s.prompt, "refused", error=str(exc)) for s in specs],
                           hardware=profile.to_dict() if profile else None, error=str(exc))
    items = []
    for s in specs:
        item = {"id": s.id, "prompt": s.prompt, "chat": chat if s.chat is None else s.chat,
                "max_tokens": max_tokens if s.max_tokens is None else s.max_tokens, "top_k": top_k}
        if s.score_tokens is not None or s.score_ref_ids is not None:
            item["score"] = {"tokens": list(s.score_tokens or []), "ref_ids": s.score_ref_ids or [[]]}
        items.append(item)
    req = {"op": "run", "model_path": os.path.abspath(model_path), "plan": plan.to_dict(), "seed": seed,
           "items": items}
    child = run_child(req, timeout_s=timeout_s, as_limit=plan.address_space_limit, threads=plan.n_threads,
                      busy_wait=plan.busy_wait)
    by_id = {r.get("id"): r for r in child.records if r.get("type") == "item"}
    loaded = next((r for r in child.records if r.get("type") == "loaded"), {})
    done = next((r for r in child.records if r.get("type") == "done"), {})
    results, n_p, s_p, n_g, s_g = [], 0, 0.0, 0, 0.0
    for s in specs:
        rec = by_id.get(s.id)
        if rec is None:  # never reached: the batch crashed or timed out first
            results.append(RunResult(s.id, s.prompt, child.status if child.status != "ok" else "crashed",
                                     error=child.error or "no result from the runner child"))
            continue
        if rec.get("error"):
            results.append(RunResult(s.id, s.prompt, "error", error=rec["error"]))
            continue
        r = RunResult(
            s.id, s.prompt, "ok", text=rec.get("text", ""), tokens=rec.get("tokens", []),
            positions=rec.get("positions", []), score=rec.get("score"),
            n_prompt_tokens=rec.get("n_prompt_tokens", 0), stopped=rec.get("stopped"),
            prompt_s=rec.get("prompt_s", 0.0), gen_s=rec.get("gen_s", 0.0),
        )
        results.append(r)
        n_p += r.n_prompt_tokens
        s_p += r.prompt_s
        # generation time covers len(tokens) - 1 decode steps (the first token comes from the prompt's logits)
        if len(r.tokens) > 1:
            n_g += len(r.tokens) - 1
            s_g += r.gen_s
    return BatchResult(
        status=child.status, model_path=model_path, results=results, plan=plan.to_dict(),
        hardware=profile.to_dict(), load_s=round(loaded.get("load_s", 0.0), 3), elapsed_s=round(child.elapsed_s, 3),
        prompt_tokens_per_s=_tps(n_p, s_p), gen_tokens_per_s=_tps(n_g, s_g), error=child.error,
        stderr_tail=child.stderr_tail if child.status != "ok" else "", returncode=child.returncode,
        peak_rss_bytes=done.get("peak_rss_bytes"), peak_vm_bytes=done.get("peak_vm_bytes"),
    )


@dataclass
class ScanResult:
    """What runner.scan measured: per frame, one row per candidate
    [kl_vs_controls, top_id, top_lp, self_lp, word_id, word_lp(, top_k)] (see runner/scan.py)."""
    status: str                          # "ok" | "crashed" | "timed_out" | "refused" | "error" | "over_budget"
    candidates: list[list[int]] = field(default_factory=list)
    reads: dict[str, list[list[float]]] = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    pieces: list[str] | None = None      # every token's text as llama.cpp decodes it (with pieces=True)
    tokens_evaluated: int = 0
    eval_s: float = 0.0
    load_s: float = 0.0
    elapsed_s: float = 0.0
    plan: dict | None = None
    error: str | None = None
    stderr_tail: str = ""


def scan_vocabulary(
    model_path: str | os.PathLike,
    frames: list[dict],
    *,
    candidates: list[list[int]] | str = "vocabulary",   # or "words" (see runner/scan.py)
    controls: int = 128,
    max_seqs: int | None = None,
    top_k: int = 0,
    timeout_s: float = 900.0,
    profile: HardwareProfile | None = None,
    max_threads: int | None = None,
    use_gpu: bool = True,
    flash_attn: bool | None = None,
    pieces: bool = False,
    budget_s: float | None = None,
) -> ScanResult:
    """Evaluate every candidate in every frame in one sandboxed child (runner/scan.py). With
    `budget_s`, a scan projected to take longer stops early: status "over_budget", the projection
    in the error."""
    model_path = str(model_path)
    try:
        profile = profile or detect_hardware()
        kw = {"max_threads": max_threads} if max_threads else {}
        plan = make_plan(profile, model_facts(model_path), n_ctx=2048, use_gpu=use_gpu, **kw)
    except (ModelTooLarge, AssayError, OSError) as exc:
        return ScanResult("refused", error=str(exc))
    if max_seqs is None:  # sequences per batch: a GPU wants wide batches (llama.cpp allows at most 256)
        max_seqs = 256 if plan.n_gpu_layers else 128
    req = {"op": "scan", "model_path": os.path.abspath(model_path), "plan": plan.to_dict(), "frames": frames,
           "candidates": candidates, "controls": controls, "max_seqs": max_seqs, "top_k": top_k,
           "flash_attn": flash_attn, "pieces": pieces, "budget_s": budget_s}
    child = run_child(req, timeout_s=timeout_s, as_limit=plan.address_space_limit, threads=plan.n_threads,
                      busy_wait=plan.busy_wait)
    meta = next((r for r in child.records if r.get("type") == "scan_meta"), None)
    done = next((r for r in child.records if r.get("type") == "scan_done"), None)
    err = next((r.get("error") for r in child.records if r.get("type") == "error"), None)
    over = next((r for r in child.records if r.get("type") == "scan_over_budget"), None)
    if over is not None:
        return ScanResult("over_budget", plan=plan.to_dict(), elapsed_s=child.elapsed_s,
                          error=f"the scan of {over['candidates']:,} candidates would take about "
                                f"{_duration(over['projected_s'])} on this machine, over its limit of {_duration(over['budget_s'])}")
    if child.status != "ok" or meta is None or done is None:
        return ScanResult(child.status if child.status != "ok" else "error", plan=plan.to_dict(),
                          elapsed_s=child.elapsed_s, error=err or child.error or "the scan did not finish",
                          stderr_tail=child.stderr_tail)
    reads: dict[str, list] = {f["name"]: [] for f in frames}
    for rec in child.records:
        if rec.get("type") == "scan_chunk":
            for name, rows in rec["reads"].items():
                reads[name].extend(rows)
    return ScanResult(
        "ok", candidates=meta["candidates"] if isinstance(candidates, str) else [list(c) for c in candidates],
        reads=reads, skipped=meta.get("skipped", {}), pieces=meta.get("pieces"), tokens_evaluated=done["tokens_evaluated"],
        eval_s=round(done["eval_s"], 3), load_s=round(meta["load_s"], 3), elapsed_s=round(child.elapsed_s, 3),
        plan=plan.to_dict())


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def next_token_logprobs(model_path: str | os.PathLike, prompt: str, top_k: int = 10, **kw) -> list[tuple[int, float]]:
    """Top-k (token id, log-prob) of the token after `prompt`, from the full softmax.

    Raises RunnerError when the run did not succeed (use run_prompts for result-style handling).
    """
    spec = PromptSpec(prompt, max_tokens=0, score_tokens=[], score_ref_ids=[[]])
    batch = run_prompts(model_path, [spec], top_k=top_k, max_tokens=0, **kw)
    r = batch.results[0]
    if r.status != "ok":
        raise RunnerError(f"runner {r.status} on {os.path.basename(str(model_path))}: {r.error or batch.error}")
    return r.top_next()


class RunnerError(AssayError):
    """A runner call that must produce a value did not."""
