"""A release's status_reason: what it waits for or why it is where it is, one line each. (Its own
module: queueing, publishing and the verification state machine all write it.)"""
from __future__ import annotations

MAX_REASON = 2000
# A release whose deciding verifier was revoked is verified again (verification.reverify_after_revocation);
# its status_reason starts with this line until a verdict decides it again.
VERIFYING_AGAIN = "verifying again: "


def with_standing_reason(current: str, reason: str) -> str:
    """`reason`, after the "verifying again" line of `current` if it has one: queueing, claiming,
    an error or a broker outage does not hide why a release is being verified again."""
    first = (current or "").split("\n", 1)[0]
    standing = first if first.startswith(VERIFYING_AGAIN) else ""
    return "\n".join(r for r in (standing, reason) if r)[:MAX_REASON]
