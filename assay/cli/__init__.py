"""The `assay` command line: main.py holds the group and the release commands; the other modules
hold command groups (policy, trust and log, witness, quantize and convert, run, doctor)."""
