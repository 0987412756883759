#!/usr/bin/env bash
# Run the whole test suite against the local PostgreSQL and Redis. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
echo "ruff (pyflakes rules):" && .venv/bin/ruff check . && echo "ruff: no findings"
scripts/services.sh
export DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/assay_test}
export REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/14}
exec .venv/bin/python -m pytest "$@"
