"""Capability routing: which verifiers can take a release's job, and where the job waits.

Each verifier advertises what it can run (its llama.cpp build, CPU, GPU and RAM) when it starts
and with every job it claims (registry/verifiers.record_capabilities). A model fits a verifier
whose RAM, plus the VRAM of its GPUs where its llama.cpp build can offload to them, holds it
(the runner puts the layers that fit on the GPU and keeps the rest in RAM). A quant to rebuild, or a
conversion to run again, goes to the queue of the llama.cpp build its signed recipe names, which
only verifiers of that build take; every other job goes to the shared queue. A job no registered verifier can take waits
visibly (status `queued`, the reason naming what it waits for), never in `error`; it is taken
as soon as a verifier that can take it starts.
"""
from __future__ import annotations

from assay.core import queueconfig
from assay.core.conversion import CONVERSION_TOOL

from .models import Blob, Release, Verifier


def needed_build(release: Release) -> str | None:
    """The llama.cpp build a release's rebuild needs (None: any verifier can verify it)."""
    recipe = release.recipe if isinstance(release.recipe, dict) else {}
    if recipe.get("tool") == CONVERSION_TOOL and isinstance(recipe.get("ggml_build"), str):
        return recipe["ggml_build"]  # the converter comes with the llama.cpp source of that build
    if not release.base_digest or not isinstance(recipe.get("ggml_build"), str):
        return None  # an original: nothing to rebuild; any verifier checks and probes it
    # A quant, with or without an importance matrix: its rebuild (and the matrix's recomputation)
    # needs the build the recipe names.
    return recipe["ggml_build"]


def memory_needed(release: Release) -> int:
    """Memory for the release and its base, each counted whole (every part of a split GGUF)."""
    size = release.blob.size + sum(p["size"] for p in release.split_parts())
    base = Release.objects.filter(blob_id=release.base_digest).first() if release.base_digest else None
    sizes = [size]
    if base is not None:
        sizes.append(base.blob.size + sum(p["size"] for p in base.split_parts()))
    elif release.base_digest:
        sizes += list(Blob.objects.filter(digest=release.base_digest).values_list("size", flat=True))
    return queueconfig.memory_needed_bytes(sizes)


def _gib(n: int) -> str:
    return f"{n / 1024**3:.1f} GB"


def vram_bytes(caps: dict) -> int:
    """GPU memory a verifier can offload layers to (0 without a GPU build or a GPU)."""
    if not caps.get("gpu_offload_supported"):
        return 0
    gpus = caps.get("gpus") if isinstance(caps.get("gpus"), list) else []
    return sum(g["vram_total_bytes"] for g in gpus if isinstance(g, dict) and isinstance(g.get("vram_total_bytes"), int))


def fits(verifier: Verifier, release: Release) -> tuple[bool, str]:
    """Can this verifier take the release, by what it advertised? (Unknown counts as yes.)"""
    caps = verifier.capabilities or {}
    build = needed_build(release)
    if build is not None and caps.get("ggml_build") not in (None, build):
        return False, f"its rebuild needs llama.cpp build {build}; verifier {verifier.name!r} has {caps.get('ggml_build')}"
    ram, need = caps.get("ram_total_bytes"), memory_needed(release)
    vram = vram_bytes(caps)
    if isinstance(ram, int) and ram + vram < need:
        has = _gib(ram) + (f" of RAM and {_gib(vram)} of GPU VRAM" if vram else "")
        return False, f"it needs about {_gib(need)} of RAM (or of RAM and GPU VRAM together); verifier {verifier.name!r} has {has}"
    return True, ""


def route(release: Release) -> tuple[str | None, str]:
    """(queue, waiting reason): the queue for the release's job (None: the shared one), and why
    it cannot be taken yet ("" when it can): no registered verifier can take it, or its base is
    still to be verified (the order claim() checks them in)."""
    build = needed_build(release)
    queue = queueconfig.build_queue(build) if build else None
    return queue, waiting_for(release, list(Verifier.objects.filter(revoked_at__isnull=True))) or waiting_for_base(release)


BASE_UNDECIDED = {Release.UPLOADED: "not yet queued", Release.QUEUED: "queued", Release.VERIFYING: "being verified",
                  Release.ERROR: "its verification stopped with an error; `manage.py requeue` runs it again"}


def waiting_for_base(release: Release) -> str:
    """Why a quant's job waits for its base ("" when it need not): the base release it names (name
    and digest) is not verified yet but is still to be decided. A quant verified before its base
    would find no verified base and stay `unreproduced` for good; one whose base was rejected is
    verified at once (and is unreproduced)."""
    statuses = set(release.named_base().values_list("status", flat=True))
    undecided = [s for s in BASE_UNDECIDED if s in statuses]
    if Release.VERIFIED in statuses or not undecided:
        return ""
    return f"waiting for its base {release.base_name} to be verified (the base is {BASE_UNDECIDED[undecided[0]]})"


def waiting_for(release: Release, verifiers: list[Verifier], what: str = "a verifier") -> str:
    """Why none of `verifiers` (active ones) can take the release's job ("" when one can)."""
    if not verifiers:
        return f"waiting for {what}: none is registered with this registry yet"
    if any(fits(v, release)[0] for v in verifiers):
        return ""
    build = needed_build(release)
    if build and not any((v.capabilities or {}).get("ggml_build") in (None, build) for v in verifiers):
        return f"waiting for {what} with llama.cpp build {build} (the build its recipe names)"
    return f"waiting for {what} with about {_gib(memory_needed(release))} of RAM, or of RAM and GPU VRAM together"
