"""A client's choice of object-storage address (assay/core/storage_address.py): read from
ASSAY_STORAGE_ADDRESS, sent as a header on every registry request, refused when misspelt."""
from __future__ import annotations

import pytest

from assay.client.http import RegistryClient
from assay.core import storage_address
from assay.core.errors import AssayError


def test_public_unless_asked(monkeypatch):
    monkeypatch.delenv("ASSAY_STORAGE_ADDRESS", raising=False)
    assert storage_address.from_environment() == "public"
    with RegistryClient("http://127.0.0.1:9") as client:
        assert storage_address.HEADER not in client.http.headers
    monkeypatch.setenv("ASSAY_STORAGE_ADDRESS", " Internal ")
    with RegistryClient("http://127.0.0.1:9") as client:
        assert client.http.headers[storage_address.HEADER] == "internal"


def test_a_misspelt_choice_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("ASSAY_STORAGE_ADDRESS", "intranet")
    with pytest.raises(AssayError, match="ASSAY_STORAGE_ADDRESS is 'intranet': it must be 'public'"):
        RegistryClient("http://127.0.0.1:9")


@pytest.mark.parametrize("value, internal", [(None, False), ("public", False), ("internal", True), ("INTERNAL", True)])
def test_the_registry_reads_the_header(value, internal):
    assert storage_address.wants_internal(value) is internal


def test_the_registry_refuses_other_values():
    with pytest.raises(ValueError, match="must be 'public' or 'internal'"):
        storage_address.wants_internal("intranet")
