"""Browsing pages: model search, model page, release page, trust page."""
from __future__ import annotations

import json
import shlex

import markdown
import nh3
from django.db.models import Q
from django.http import Http404, JsonResponse
from django.shortcuts import render

from assay.core import levels
from assay.core.conversion import CONVERSION_TOOL
from assay.core.numbers import whole_number
from assay.core.errors import AssayError

from .. import logbrowser, tlog
from ..api.keys import trust_info
from ..bundles import step_rows
from ..models import RegistryModel, Release
from ..permissions import can_publish, can_read, visible_namespaces
from ..releases import visible_releases
from ..verification import second_opinion_wait, vouching
from .evidence import readable_evidence

ALLOWED_TAGS = {"p", "h1", "h2", "h3", "h4", "ul", "ol", "li", "code", "pre", "em", "strong", "a", "blockquote", "table", "thead", "tbody", "tr", "th", "td", "br", "hr"}


def render_markdown(text: str) -> str:
    """Model cards are Markdown written by strangers: rendered, then sanitized (no scripts, no handlers)."""
    html = markdown.markdown(text or "", extensions=["fenced_code", "tables"])
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes={"a": {"href", "title"}}, url_schemes={"http", "https"})


def home(request):
    query = request.GET.get("q", "").strip()
    models = RegistryModel.objects.filter(namespace__in=visible_namespaces(request.user)).select_related("namespace")
    if query:
        models = models.filter(Q(name__icontains=query) | Q(namespace__name__icontains=query) | Q(description__icontains=query))
    rows = []
    for model in models.order_by("namespace__name", "name")[:200]:
        shown = visible_releases(request.user, model.namespace, model.releases.all())
        latest = shown.order_by("-created").first()
        if latest is None:
            continue  # nothing this visitor may see: not even the model's name (as the JSON catalog)
        rows.append({"model": model, "latest": latest, "badge": status_badge(latest) if latest else None,
                     "verified": model.releases.filter(status=Release.VERIFIED).count()})
    return render(request, "registry/home.html", {"rows": rows, "query": query})


def _visible_model(request, ns: str, name: str) -> RegistryModel:
    model = RegistryModel.objects.select_related("namespace").filter(namespace__name=ns, name=name).first()
    if model is None or not can_read(request.user, model.namespace):
        raise Http404("model not found")  # private namespaces are invisible, not forbidden
    return model


def status_badge(release: Release) -> tuple[str, str]:
    """(text, css class) of a release's status: a verified release shows its verification level,
    never a plain "verified" (an unreproduced one is marked as a warning)."""
    if release.status == Release.VERIFIED and release.level:
        return release.level, f"level-{release.level}"
    return release.status, release.status


def level_rows(release: Release) -> dict | None:
    """The level, what it means and its chain, for the release page (None before the verdict)."""
    if not release.level:
        return None
    try:
        level = levels.Level.from_dict(release.level_detail)
    except (AssayError, TypeError):
        return None
    return {"name": level.name, "meaning": levels.DESCRIPTIONS[level.name], "reason": level.reason,
            "chain": [link.to_dict() for link in level.chain]}


def _badges(release: Release) -> list[tuple[str, str]]:
    """One badge per check. "signed" is the verifier's signed verdict: passed only for a PASSED
    verdict (a signed FAILED verdict is "failed"); "in log" needs both the publisher's statement
    and the verdict in the transparency log."""
    steps = {s.name: s.status for s in release.steps.all()}
    if not release.verdict_envelope:
        signed = "pending"
    else:
        signed = "passed" if release.status == Release.VERIFIED else "failed"
    logged = release.release_log_index is not None and release.verdict_log_index is not None
    return [
        ("static", steps.get("static", "pending")),
        ("rebuilt", steps.get("reproduce", "pending")),
        ("probes", steps.get("probes", "pending")),
        ("signed", signed),
        ("in log", "passed" if logged else "pending"),
    ]


def model_page(request, ns: str, name: str):
    model = _visible_model(request, ns, name)
    releases = list(visible_releases(request.user, model.namespace, model.releases.all())
                    .select_related("blob").prefetch_related("steps").order_by("tag", "-version"))
    if not releases and not can_publish(request.user, model.namespace):
        raise Http404("model not found")  # only unverified releases: a reader does not learn the model exists
    newest = max(releases, key=lambda r: r.created, default=None)  # the card of the newest release
    verified = max((r for r in releases if r.status == Release.VERIFIED), key=lambda r: r.created, default=None)
    return render(request, "registry/model.html", {
        "model": model,
        "releases": [{"r": r, "badges": _badges(r), "status_badge": status_badge(r)} for r in releases],
        "card": render_markdown(newest.model_card) if newest else "",
        "host": request.get_host(),
        "gguf": gguf_panel(verified) if verified else None,
        "usage": usage_snippets(request, verified) if verified else None,
    })


def _release(request, ns, name, tag, version) -> Release:
    model = _visible_model(request, ns, name)
    release = (visible_releases(request.user, model.namespace, model.releases.filter(tag=tag, version=version))
               .select_related("blob", "publisher_key__user", "verifier").first())
    if release is None:
        raise Http404("release not found")
    return release


def release_page(request, ns: str, name: str, tag: str, version: int):
    release = _release(request, ns, name, tag, version)
    steps = step_rows(release)
    return render(request, "registry/release.html", {
        "release": release, "steps": steps, "badges": _badges(release), "evidence": readable_evidence(steps),
        "status_badge": status_badge(release), "level": level_rows(release), "vouching": vouching(release),
        "second_opinion_wait": second_opinion_wait(release), "card": render_markdown(release.model_card), "host": request.get_host(),
        "inputs": list(release.inputs.select_related("blob").order_by("role", "name")), "upstream": upstream_claim(release),
    })


def gguf_panel(release: Release) -> dict:
    """What the static step read from the file's header: architecture, file type, tensors, chat
    template findings (the signed evidence, not the publisher's words)."""
    static = next((s for s in release.steps.all() if s.name == "static"), None)
    evidence = static.evidence if static is not None and isinstance(static.evidence, dict) else {}
    summary = evidence.get("summary") if isinstance(evidence.get("summary"), dict) else {}
    findings = [f for f in evidence.get("findings") or [] if isinstance(f, dict) and str(f.get("check", "")).startswith("template")]
    types = summary.get("tensor_types") if isinstance(summary.get("tensor_types"), dict) else {}
    return {"release": release, "architecture": summary.get("architecture"), "file_type": summary.get("file_type"),
            "tensor_count": summary.get("tensor_count"), "tensor_types": sorted(types.items(), key=lambda kv: -int(kv[1] or 0)),
            "template_findings": findings[:10], "parts": len(release.split_parts()) + 1}


def usage_snippets(request, release: Release) -> dict:
    """How to fetch the newest verified release with each client the registry serves. Commands a
    visitor pastes into a shell: the file name is the publisher's (it may hold $, `, ' or "), so
    every value is a Python string literal (json.dumps) inside one shell word (shlex.quote)."""
    base = request.build_absolute_uri("/").rstrip("/")
    ns, model = release.model.namespace.name, release.model.name
    host = request.get_host()
    repo, file_name, tag, endpoint = (json.dumps(v, ensure_ascii=False) for v in (f"{ns}/{model}", release.file_name, release.tag, base))
    return {
        "assay": f"assay pull {ns}/{model}:{release.tag}\nassay run {ns}/{model}:{release.tag} \"Hello\"",
        "llama_cpp": f"HF_ENDPOINT={shlex.quote(base)} python -c "
                     + shlex.quote(f"from llama_cpp import Llama; Llama.from_pretrained({repo}, {file_name})"),
        "huggingface_hub": "python -c " + shlex.quote(f"from huggingface_hub import hf_hub_download; "
                                                      f"print(hf_hub_download({repo}, {file_name}, revision={tag}, endpoint={endpoint}))"),
        "oras": f"oras pull {shlex.quote(f'{host}/{ns}/{model}:{release.tag}')}",
        "download": f"/api/v1/blobs/{release.blob_id}",
    }


def upstream_claim(release: Release) -> dict | None:
    """A conversion's claimed source (repository, revision) from its signed recipe; None otherwise."""
    recipe = release.recipe if isinstance(release.recipe, dict) else {}
    if recipe.get("tool") != CONVERSION_TOOL:
        return None
    claim = (recipe.get("options") or {}).get("upstream")
    return claim if isinstance(claim, dict) else {}


def release_status_json(request, ns: str, name: str, tag: str, version: int):
    release = _release(request, ns, name, tag, version)
    text, css = status_badge(release)
    return JsonResponse({"status": release.status, "status_reason": release.status_reason, "badge": {"text": text, "class": css},
                         "second_opinions": second_opinion_wait(release),
                         "steps": [{k: s[k] for k in ("name", "status", "summary")} for s in step_rows(release)]})


def log_page(request):
    before = request.GET.get("before")
    number = whole_number(before) if before is not None else None
    if before is not None and number is None:
        raise Http404("no such log page")
    return render(request, "registry/log.html", {"page": logbrowser.page(number)})


def log_entry_page(request, index: int):
    found = logbrowser.entry(index)
    if found is None:
        raise Http404(f"the log has no entry {index}")
    return render(request, "registry/log_entry.html", {"e": found, "proof_json": found["proof"]})


def trust_page(request):
    return render(request, "registry/trust.html", {"trust": trust_info(), "checkpoint": tlog.signed_checkpoint()})
