"""The transfer benchmarks still run (at toy sizes: they measure nothing here, they only have to
work). They drive the client's download internals directly, so a change there can break them
without any other test noticing; numbers are for `make bench`, never asserted."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.stack import BIN, REPO

BENCHES = [
    ("transfer.py", ["--nginx", "--size-mib", "4", "--rounds", "1"], "checked by BLAKE3"),
    ("load.py", ["--nginx", "--pulls", "3", "--size-mib", "2", "--slow", "5"], "slow connections held open"),
    ("split_pull.py", ["--nginx", "--parts", "2", "--part-mib", "2", "--rounds", "1"], "parts at once"),
    ("pull_paths.py", ["--size-mib", "4", "--rounds", "1"], "client"),
]


@pytest.mark.parametrize("script, args, expect", BENCHES, ids=[b[0] for b in BENCHES])
def test_the_transfer_bench_runs(script, args, expect):
    done = subprocess.run([str(BIN / "python"), str(REPO / "bench" / script), *args], capture_output=True, text=True,
                          timeout=600, cwd=REPO, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    assert expect in done.stdout, done.stdout[-2000:]
    print(done.stdout, file=sys.stderr)
