"""Which address of a registry's object storage its pre-signed URLs name.

A registry on S3-compatible storage sends blob downloads and upload parts to pre-signed URLs on its
public endpoint (ASSAY_S3_PUBLIC_ENDPOINT), the address clients outside reach the store at. A
client on the registry's own network may not reach that name: in docker-compose the public
endpoint is `localhost:8333` on the host, and `localhost` inside a verifier's container is the
container itself. Such a client sets ASSAY_STORAGE_ADDRESS=internal; it then sends the header
below, and the registry signs its URLs for the address it reaches the store at itself
(ASSAY_S3_ENDPOINT). The URL grants the same access either way; only the host differs. The
registry honours the header for authenticated callers (a user's token or a verifier's)."""
from __future__ import annotations

import os

from assay.core.errors import AssayError

HEADER = "Assay-Storage-Address"
ENVIRONMENT = "ASSAY_STORAGE_ADDRESS"
PUBLIC, INTERNAL = "public", "internal"
VALUES = (PUBLIC, INTERNAL)
UNREACHABLE_HINT = f"on the registry's own network, set {ENVIRONMENT}=internal"  # a client that cannot reach the store


def from_environment() -> str:
    """This client's choice: ASSAY_STORAGE_ADDRESS, `public` when unset."""
    value = os.environ.get(ENVIRONMENT, "").strip().lower() or PUBLIC
    if value not in VALUES:
        raise AssayError(f"{ENVIRONMENT} is {value!r}: it must be 'public' (the default) or 'internal' "
                         "(this machine is on the registry's own network and reaches its object storage there)")
    return value


def wants_internal(header_value: str | None) -> bool:
    """What a request's header asks for; ValueError for a value that is neither."""
    value = (header_value or PUBLIC).strip().lower()
    if value not in VALUES:
        raise ValueError(f"{HEADER} must be 'public' or 'internal', not {header_value!r}")
    return value == INTERNAL
