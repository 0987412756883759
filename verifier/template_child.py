"""Child process for verifier.template_checks: runs every chat template check on one template
under an address-space limit and reports the findings on stdout.

Usage: python -m verifier.template_child AS_LIMIT_BYTES < {"source": ..., "bos_token": ..., "eos_token": ...}
The last stdout line is a JSON list of findings (Finding.to_dict()). The parent enforces the
wall-clock limit (verifier.template_checks.RENDER_TIMEOUT_S) and kills this process's group.
"""
from __future__ import annotations

import json
import resource
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m verifier.template_child AS_LIMIT_BYTES < REQUEST.json", file=sys.stderr)
        return 64
    limit = int(argv[1])
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    from verifier.template_checks import LIMIT_ERRORS, RENDERER_READY, _limit_finding, check_chat_template_here

    print(RENDERER_READY, flush=True)  # started: what fails from here on is the template's doing
    request = json.loads(sys.stdin.read())
    try:
        findings = check_chat_template_here(request["source"], request["bos_token"], request["eos_token"], request.get("reviewed"))
    except LIMIT_ERRORS as exc:  # parsing or a check outside the guarded renders
        findings = [_limit_finding(exc, "being checked")]
    print(json.dumps([f.to_dict() for f in findings], default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
