"""What the static and template checks report: one Finding per result, with a severity."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass
class Finding:
    """One result: check name, severity ("error" | "warning" | "info"), one-line message, evidence."""
    check: str
    severity: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
