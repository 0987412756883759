"""Collecting witness cosignatures for the log's checkpoints (C2SP tlog-witness).

After every commit that appends to the log, the registry asks each configured witness
(settings.ASSAY_WITNESSES) to cosign the new checkpoint, sending the consistency proof from the
size that witness last cosigned. A witness cosigns only an extension of what it cosigned before,
so a registry that forks or rewrites its log cannot collect cosignatures for the fork from a
witness that saw the original. The checkpoint with every cosignature collected is stored and
served with release bundles (registry/bundles.py) whenever it covers the bundle's entries;
`/api/v1/log/checkpoint?cosigned=1` serves the newest one. A witness that cannot be reached
never fails a request: the error is kept on its WitnessState row and the next append retries.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from assay.core.cosignature import add_cosignatures
from assay.core.errors import AssayError
from assay.core.numbers import whole_number
from assay.client.witness import request_cosignature

from . import tlog
from .models import CosignedCheckpoint, WitnessState

log = logging.getLogger(__name__)


def configured() -> list[str]:
    return list(settings.ASSAY_WITNESSES)


def _ask(url: str, state: WitnessState, size: int, text: str) -> str | None:
    """One witness's cosignature line(s) for the checkpoint `text` of `size`, or None."""
    old = state.size
    for _ in range(2):  # a 409 tells the witness's real size: one retry from there
        if old > size:
            state.last_error = f"the witness has cosigned size {old}, beyond {size}"
            return None
        proof = tlog.consistency_proof(old, size) if 0 < old < size else []
        try:
            status, body = request_cosignature(url, old, proof, text, timeout=settings.ASSAY_WITNESS_TIMEOUT_S)
        except AssayError as exc:
            state.last_error = str(exc)
            return None
        if status == 200:
            state.size, state.last_error = size, ""
            return body
        witness_size = whole_number(body) if status == 409 else None  # "²" or 5,000 digits are no size
        if witness_size is not None:
            old = witness_size
            continue
        state.last_error = f"HTTP {status}: {body.strip()[:300]}"
        log.warning("witness %s refused checkpoint %s: %s", url, size, state.last_error)
        return None
    return None


def collect(*, refresh: bool = False) -> CosignedCheckpoint | None:
    """Ask every configured witness to cosign the current checkpoint; store and return it.
    With refresh, witnesses that cosigned this size already are asked again, for a recent
    timestamp (a witness cosigns the same size again when old == size)."""
    urls = configured()
    if not urls:
        return None
    size = tlog.size()
    existing = CosignedCheckpoint.objects.filter(size=size).first()
    if existing is not None and set(existing.witnesses) >= set(urls) and not refresh:
        return existing
    ask = urls if refresh else [u for u in urls if not existing or u not in existing.witnesses]
    plain = tlog.signed_checkpoint(size)
    lines, answered = [], []
    for url in ask:
        state, _ = WitnessState.objects.get_or_create(url=url)
        got = _ask(url, state, size, plain)
        state.save()
        if got:
            lines.append(got)
            answered.append(url)
    if not lines:
        return existing
    with transaction.atomic():
        row = CosignedCheckpoint.objects.select_for_update().filter(size=size).first()
        if refresh or row is None:  # fresh lines only (a refresh drops the old timestamps)
            text, cosigned = add_cosignatures(plain, lines), answered
        else:  # another collector stored some meanwhile: keep both sets of lines
            text, cosigned = add_cosignatures(row.text, lines), list(dict.fromkeys(row.witnesses + answered))
        row = CosignedCheckpoint(size=size, text=text, witnesses=cosigned, created=timezone.now())
        row.save()
    return row


def current_cosigned(min_size: int = 0) -> CosignedCheckpoint | None:
    """The newest cosigned checkpoint holding at least `min_size` entries, collected again first
    when none does or its cosignatures are older than ASSAY_WITNESS_REFRESH_S."""
    row = newest(min_size)
    stale = row is None or row.created < timezone.now() - timedelta(seconds=settings.ASSAY_WITNESS_REFRESH_S)
    if stale:
        try:
            collect(refresh=row is not None)
        except Exception:  # unreachable witnesses: serve what there is
            log.exception("collecting witness cosignatures failed")
        row = newest(min_size)
    return row


def collect_after_commit() -> None:
    """Schedule collect() for when the current transaction commits (no-op without witnesses)."""
    if configured():
        transaction.on_commit(_collect_quietly)


def _collect_quietly() -> None:
    try:
        collect()
    except Exception:  # a witness problem never fails the request that appended
        log.exception("collecting witness cosignatures failed")


def newest(min_size: int = 0) -> CosignedCheckpoint | None:
    """The newest cosigned checkpoint whose tree has at least `min_size` entries."""
    return CosignedCheckpoint.objects.filter(size__gte=min_size).order_by("-size").first()
