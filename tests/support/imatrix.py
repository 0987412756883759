"""An importance matrix made at test time with llama.cpp's own llama-imatrix (assay.toolchain.llama_tools)
from a small calibration text, for the imatrix quantization tests."""
from __future__ import annotations

import subprocess
from pathlib import Path

CALIBRATION_TEXT = """\
The river runs past the old mill and through the town, where the bakers open their shops before dawn.
Children walk to school along the bank, counting the boats that carry timber down to the harbour.
In the afternoon the market fills with farmers selling apples, cheese, honey and bread.
A teacher explains how water turns wheels, how wheels turn stones, and how stones grind flour.
The library keeps maps of the valley drawn two hundred years ago, when the bridge was made of wood.
def add(a, b):
    return a + b
print(add(2, 3))
Question: What is the capital of France? Answer: Paris is the capital of France.
Question: How many legs does a spider have? Answer: A spider has eight legs.
The committee met on Tuesday to discuss the budget, the new railway station and the summer festival.
Scientists measured the temperature of the lake every hour for a month and published the results.
When the storm came, the fishermen pulled their nets in early and waited in the harbour for the wind to drop.
"""


def calibration_file(folder: Path, repeat: int = 6) -> Path:
    path = folder / "calibration.txt"
    path.write_text(CALIBRATION_TEXT * repeat, encoding="utf-8")
    return path


def make_imatrix(model: Path, out: Path, *, threads: int = 2, ctx: int = 128, chunks: int = 4,
                 calibration: Path | None = None) -> Path:
    """llama-imatrix over the calibration text: `chunks` chunks of `ctx` tokens, on the CPU."""
    from assay.toolchain.llama_tools import tool_env, tool_path

    calibration = calibration or calibration_file(out.parent)
    cmd = [str(tool_path("llama-imatrix")), "-m", str(model), "-f", str(calibration), "-o", str(out),
           "-c", str(ctx), "--chunks", str(chunks), "-t", str(threads), "-ngl", "0", "--no-ppl"]
    run = subprocess.run(cmd, env=tool_env({"PATH": "/usr/bin:/bin"}), capture_output=True, text=True, timeout=600)
    if run.returncode != 0 or not out.is_file():
        raise RuntimeError(f"llama-imatrix failed ({run.returncode}): {run.stderr[-1500:]}")
    return out
