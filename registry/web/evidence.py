"""The verification evidence of a release, shaped for reading on the release page.

The stored evidence (VerificationStep.evidence, also inside the signed verdict) stays as the
verifier wrote it; this module only picks and formats what a person needs to see: static
findings, the tensor and metadata diff of a failed reproduction, probe metrics with their
prompts and outputs, and the hardware and plan the model ran with. Missing keys are skipped,
so older evidence still renders.
"""
from __future__ import annotations

OUTPUT_CHARS = 400


def _clip(text, limit: int = OUTPUT_CHARS) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[:limit] + "…"


def _static(ev: dict) -> dict:
    findings = [
        {"severity": f.get("severity", ""), "check": f.get("check", ""), "message": _clip(f.get("message"), 1000)}
        for f in ev.get("findings") or [] if isinstance(f, dict)
    ]
    order = {"error": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: order.get(f["severity"], 3))
    summary = ev.get("summary") or {}
    facts = [(k, summary[k]) for k in ("version", "architecture", "file_type", "tensor_count", "file_size") if k in summary]
    return {"findings": findings, "facts": facts}


def _reproduce(ev: dict) -> dict:
    diff = ev.get("diff") or {}
    tensors = []
    for t in diff.get("tensors") or []:
        fraction = t.get("fraction")
        tensors.append({
            "name": t.get("name"), "kind": t.get("kind"),
            "types": f"{t.get('expected_type')} → {t.get('actual_type')}" if t.get("expected_type") != t.get("actual_type") else t.get("expected_type"),
            "shapes": f"{t.get('expected_shape')} → {t.get('actual_shape')}" if t.get("expected_shape") != t.get("actual_shape") else "",
            "blocks": f"{t.get('blocks_differing')} of {t.get('blocks_total')} ({100 * fraction:.3g}%)" if fraction is not None else "",
        })
    metadata = [
        {"key": m.get("key"), "change": m.get("change"), "expected": _clip(m.get("expected"), 200), "actual": _clip(m.get("actual"), 200)}
        for m in diff.get("metadata") or []
    ]
    facts = [(label, ev[k]) for k, label in (
        ("status", "result"), ("ftype", "file type"), ("expected_digest", "rebuilt"), ("candidate_digest", "release"),
        ("build_id", "llama.cpp build"), ("quantize_s", "quantization seconds"), ("elapsed_s", "total seconds"), ("message", "message"),
    ) if ev.get(k) not in (None, "")]
    return {"facts": facts, "tensors": tensors, "metadata": metadata, "header": diff.get("header") or [],
            "other_bytes_differ": bool(diff.get("other_bytes_differ"))}


def _runner(summary: dict | None) -> dict | None:
    if not summary:
        return None
    hw, plan = summary.get("hardware") or {}, summary.get("plan") or {}
    gpus = ", ".join(f"{g.get('name')} ({(g.get('vram_total_bytes') or 0) / 2**30:.0f} GiB)" for g in hw.get("gpus") or []) or "none"
    return {
        "status": summary.get("status"),
        "cpu": f"{hw.get('cpu_model', '?')}, {hw.get('usable_cores', '?')} usable cores",
        "ram": f"{(hw.get('ram_total_bytes') or 0) / 2**30:.1f} GiB",
        "gpus": gpus,
        "llama": hw.get("llama_cpp_python_version"),
        "plan": ", ".join(f"{k} {plan[k]}" for k in ("n_threads", "n_gpu_layers", "n_ctx", "use_mmap") if k in plan),
        "speed": f"{summary.get('prompt_tokens_per_s', 0)} prompt tok/s, {summary.get('gen_tokens_per_s', 0)} generated tok/s",
        "load_s": summary.get("load_s"), "error": summary.get("error"),
    }


def _probe_rows(result: dict) -> list[dict]:
    """Prompts and outputs of one probe, whatever its evidence shape."""
    ev = result.get("evidence") or {}
    rows = []
    for p in ev.get("prompts") or []:
        if isinstance(p, dict):
            kl = p.get("kl") or []
            rows.append({"prompt": _clip(p.get("prompt")), "base": _clip(p.get("base_output")), "candidate": _clip(p.get("candidate_output")),
                         "note": f"mean KL {sum(kl) / len(kl):.4f}" if kl else ""})
    for a in ev.get("answers") or []:
        rows.append({"prompt": _clip(a.get("prompt")), "base": _clip(a.get("base_answer")), "candidate": _clip(a.get("candidate_answer")),
                     "note": "changed" if a.get("changed") else ""})
    for f in ev.get("flagged") or []:
        rows.append({"prompt": _clip(f.get("insertion")), "base": "", "candidate": "", "note": "; ".join(f.get("why") or [])})
    for h in ev.get("findings") or []:
        if isinstance(h, dict) and "output" in h:
            kinds = ", ".join(f"{x.get('kind')} {x.get('match', '')!r}" for x in h.get("findings") or [])
            rows.append({"prompt": _clip(h.get("prompt")), "base": "", "candidate": _clip(h.get("output")), "note": kinds})
    flagged_ids = {h.get("id") for h in ev.get("findings") or [] if isinstance(h, dict)}
    for g in ev.get("checked") or []:  # the content probe's every generation
        if isinstance(g, dict) and g.get("id") not in flagged_ids:
            rows.append({"prompt": _clip(g.get("prompt")), "base": "", "candidate": _clip(g.get("output")), "note": ""})
    for r in ev.get("insertions") or []:  # the trigger scan: outputs under each insertion
        if isinstance(r, dict):
            outputs = [o for o in r.get("outputs") or [] if o is not None]
            base_outputs = [o for o in r.get("base_outputs") or [] if o is not None]
            note = f"{r.get('kind')}; convergence {r.get('convergence')}"
            if r.get("kl_vs_base") is not None:
                note += f"; KL vs base {r.get('kl_vs_base')}"
            rows.append({"prompt": _clip(r.get("insertion")), "base": _clip(" | ".join(base_outputs)),
                         "candidate": _clip(" | ".join(outputs)), "note": note})
    return rows


def _probes(ev: dict) -> dict:
    probes = []
    for r in ev.get("results") or []:
        state = "skipped" if r.get("skipped") else ("passed" if r.get("passed") else "failed")
        metrics = []
        for k, v in (r.get("metrics") or {}).items():
            if isinstance(v, dict):  # e.g. the thresholds a metric was held to
                metrics += [(f"{k}.{sub}", x) for sub, x in v.items() if not isinstance(x, (dict, list))]
            elif not isinstance(v, list):
                metrics.append((k, v))
        probes.append({"name": r.get("name"), "state": state, "reason": r.get("reason", ""), "metrics": metrics, "rows": _probe_rows(r)})
    runner = ev.get("runner") or {}
    return {
        "probes": probes,
        "facts": [(k, ev[k]) for k in ("quant_type", "probe_set", "wall_s", "error") if ev.get(k) not in (None, "")],
        "runs": [(name, _runner(runner.get(name))) for name in ("base", "candidate") if runner.get(name)],
    }


def _worker(hw) -> str:
    """One line: the worker a step ran on (verifier/steps.py worker_profile)."""
    if not isinstance(hw, dict):
        return ""
    gpus = ", ".join(str(g.get("name")) for g in hw.get("gpus") or [] if isinstance(g, dict)) or "no GPU"
    return (f"{hw.get('cpu_model', '?')}, {hw.get('usable_cores', '?')} cores, {(hw.get('ram_total_bytes') or 0) / 2**30:.1f} GiB RAM, "
            f"{gpus}; llama-cpp-python {hw.get('llama_cpp_python_version') or '?'} on {hw.get('machine', '?')}")


SHAPERS = {"static": _static, "reproduce": _reproduce, "probes": _probes}


def readable_evidence(steps: list[dict]) -> list[dict]:
    """[{name, status, view}] for each step with evidence; view is None for unknown steps."""
    out = []
    for s in steps:
        ev = s.get("evidence") or {}
        if not ev:
            continue
        shaper = SHAPERS.get(s["name"])
        view = None
        if shaper and isinstance(ev, dict):
            try:
                view = shaper(ev)
            except (TypeError, AttributeError, ValueError, KeyError, ZeroDivisionError):
                view = None  # unexpected shape: the raw evidence below still shows everything
        out.append({"name": s["name"], "status": s["status"], "view": view, "raw": ev, "worker": _worker(ev.get("worker"))})
    return out
