#!/usr/bin/env bash
# Set up and run the registry (web), its maintenance worker (periodic tasks) and a verifier in
# the foreground until Ctrl-C.
# Defaults: the local PostgreSQL (database "assay", created if missing; SQLite in var/ when no
# PostgreSQL answers), blobs in var/blobs, the log key in var/keys, the local Redis as Celery
# broker. The verifier is a service of its own: its key and registration in var/verifier (never
# the registry's folder), registered with the registry over HTTP on first start, and run with no
# database settings at all (it reaches the registry only through the verifier API).
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
setup=$(.venv/bin/python manage.py devsetup --url "http://$HOST:$PORT")
echo "$setup"
ADMIN_TOKEN=$(echo "$setup" | sed -n 's/.*API token: \(\S*\).*/\1/p')

WEB_BIND="$HOST:$PORT"
if [ "${ASSAY_NGINX:-0}" = "1" ]; then
  # nginx in front: it takes the connections and serves blob downloads itself; gunicorn listens
  # on the next port, on loopback only.
  scripts/ensure_deb.sh /usr/sbin/nginx nginx-light
  WEB_BIND="127.0.0.1:${ASSAY_WEB_PORT:-$((PORT + 1))}"
  conf=$(.venv/bin/python manage.py nginx_conf --listen "$HOST:$PORT" --upstream "$WEB_BIND" --run-dir var/nginx)
  /usr/sbin/nginx -c "$conf" -p "$PWD/var/nginx" -e "$PWD/var/nginx/error.log" &
  nginx=$!
fi
.venv/bin/gunicorn registry.wsgi:application --bind "$WEB_BIND" --workers "${WEB_WORKERS:-2}" --threads 4 --timeout 600 --access-logfile - &
web=$!
trap 'kill $web ${nginx:-} ${maint:-} ${verifier:-} 2>/dev/null; wait' INT TERM EXIT
for _ in $(seq 1 120); do curl -fsS -o /dev/null "http://$HOST:$PORT/api/v1/trust" && break; sleep 0.5; done

mkdir -p var
# The registry's maintenance worker: requeues releases whose tasks were lost, collects garbage
# (-B: it runs the periodic schedule). It has the database; verifiers have not.
.venv/bin/celery -A registry.queueing worker -B -s var/celerybeat-schedule -Q "${ASSAY_QUEUE:-assay-verify}-registry" \
  --loglevel INFO --concurrency 1 -n "registry@%h" &
maint=$!

export ASSAY_VERIFIER_DIR=${ASSAY_VERIFIER_DIR:-$PWD/var/verifier}
env -u DATABASE_URL -u DJANGO_SETTINGS_MODULE .venv/bin/python -m verifier register "http://$HOST:$PORT" \
  --name "${ASSAY_VERIFIER_NAME:-local}" --token "$ADMIN_TOKEN" --if-needed
env -u DATABASE_URL -u DJANGO_SETTINGS_MODULE .venv/bin/celery -A verifier.celery_app worker --loglevel INFO \
  --concurrency "${WORKER_CONCURRENCY:-1}" -n "verifier@%h" &
verifier=$!
echo "registry on http://$HOST:$PORT  (Ctrl-C stops the web server, the maintenance worker and the verifier)"
wait -n $web $maint $verifier ${nginx:-}
