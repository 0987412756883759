#!/usr/bin/env bash
# Set up and run the registry (web) and a verification worker in the foreground until Ctrl-C.
# Defaults: the local PostgreSQL (database "assay", created if missing; SQLite in var/ when no
# PostgreSQL answers), blobs in var/blobs, keys in var/keys, the local Redis as Celery broker.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/services.sh || echo "warning: could not start local services"

if [ -z "${DATABASE_URL:-}" ]; then
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null \
     && { psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='assay'" 2>/dev/null | grep -q 1 \
          || createdb -h 127.0.0.1 -U postgres assay 2>/dev/null; }; then
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/assay
  else
    echo "no usable local PostgreSQL: using SQLite in var/assay.sqlite3"
    mkdir -p var && export DATABASE_URL="sqlite:///$PWD/var/assay.sqlite3"
  fi
fi
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
HOST=${ASSAY_HOST:-127.0.0.1}
PORT=${ASSAY_PORT:-8000}

.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py collectstatic --noinput -v 0
.venv/bin/python manage.py devsetup --url "http://$HOST:$PORT"

.venv/bin/gunicorn registry.wsgi:application --bind "$HOST:$PORT" --workers "${WEB_WORKERS:-2}" --threads 4 --timeout 600 --access-logfile - &
web=$!
# -B: this worker also runs the periodic tasks (requeue of releases whose tasks were lost)
mkdir -p var
.venv/bin/celery -A verifier.celery_app worker -B -s var/celerybeat-schedule --loglevel INFO --concurrency "${WORKER_CONCURRENCY:-1}" &
worker=$!
trap 'kill $web $worker 2>/dev/null; wait' INT TERM EXIT
echo "registry on http://$HOST:$PORT  (Ctrl-C stops the web server and the worker)"
wait -n $web $worker
