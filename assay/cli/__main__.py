"""`python -m assay.cli`: the same as the `assay` console script."""
from assay.cli.main import main

main()
