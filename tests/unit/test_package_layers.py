"""assay/ is four packages in layers: core (formats) at the bottom, toolchain (llama.cpp's
quantize, imatrix, convert and split tools) and client (HTTP, bundle verification, trust policy,
pull, publish) above it, cli at the top. No module imports a layer above its own (function-local
imports included), and nothing under assay/ imports the services (registry, verifier, runner)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ASSAY = Path(__file__).resolve().parents[2] / "assay"
MAY_IMPORT = {
    "core": {"core"},
    "toolchain": {"core", "toolchain"},
    "client": {"core", "toolchain", "client"},
    "cli": {"core", "toolchain", "client", "cli"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{path}:{node.lineno}: relative import (write assay.<package>.<module>)")
            found.append((node.lineno, node.module or ""))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_no_module_imports_a_layer_above_its_own(layer):
    problems = []
    for path in sorted((ASSAY / layer).rglob("*.py")):
        for line, module in _imports(path):
            parts = module.split(".")
            if parts[0] in ("registry", "verifier", "runner") and layer != "cli":
                problems.append(f"{path.relative_to(ASSAY.parent)}:{line} imports the service {module}")
            if parts[0] == "assay":
                if len(parts) < 2 or parts[1] not in MAY_IMPORT:
                    problems.append(f"{path.relative_to(ASSAY.parent)}:{line} imports {module}, which is in no layer")
                elif parts[1] not in MAY_IMPORT[layer]:
                    problems.append(f"{path.relative_to(ASSAY.parent)}:{line} ({layer}) imports {module} ({parts[1]})")
    assert not problems, "\n".join(problems)


def test_assay_holds_only_the_four_packages():
    top = sorted(p.name for p in ASSAY.iterdir() if not p.name.startswith(("__pycache__", ".")))
    assert top == ["__init__.py", "cli", "client", "core", "toolchain"], top


def test_one_list_of_verification_steps():
    """The verifier's steps, the registry's step rows and the checks a trust policy may require
    are assay/core/statements.py's CHECK_STEPS and STEP_NAMES."""
    from assay.core.statements import CHECK_STEPS, STEP_NAMES
    from verifier.steps import STEPS

    assert tuple(STEPS) == CHECK_STEPS and STEP_NAMES == (*CHECK_STEPS, "attest")
