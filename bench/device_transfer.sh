#!/usr/bin/env bash
# The transfer and load benchmarks (bench/transfer.py, bench/load.py) on a machine with more cores
# than this VM, where SHA-256 and the clients do not have to share 2 cores with nginx and the
# kernel. Run from the repository root on a lent device machine (Python 3.12, no PostgreSQL, no
# nginx, no network). It needs, made here beforehand (both git-ignored):
#   .devwhl/  the server's Python wheels for CPython 3.12 that the machine lacks:
#             pip download --only-binary=:all: --python-version 3.12 --implementation cp \
#               --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .devwhl \
#               'Django>=5.2,<5.3' gunicorn dj-database-url whitenoise django-ratelimit==4.1.0 \
#               'celery[redis]>=5.5,<5.8' redis cryptography rfc8785==0.1.4 gguf==0.19.0 anyascii==0.3.3 \
#               'pydantic>=2.10,<3' nh3 platformdirs markdown 'httpx>=0.27,<0.29'
#             (then remove what the machine has: numpy, pyyaml, tqdm, requests, urllib3, ...)
#   .devdeb/  Debian's nginx packages: (cd .devdeb && apt-get download nginx nginx-common)
# The registry runs on SQLite there (bench --sqlite); the numbers are printed and written to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
python3 -m pip install -q --no-index --no-deps --no-compile .devwhl/*.whl || exit 1
rm -rf /tmp/ngx && mkdir -p /tmp/ngx && dpkg -x .devdeb/nginx_*.deb /tmp/ngx && dpkg -x .devdeb/nginx-common_*.deb /tmp/ngx || exit 1
[ -e /etc/nginx/mime.types ] || { mkdir -p /etc/nginx && cp /tmp/ngx/etc/nginx/mime.types /etc/nginx/; }  # the config includes it
export ASSAY_NGINX_BIN=/tmp/ngx/usr/sbin/nginx
{
  echo "cores: $(nproc); $(grep -m1 'model name' /proc/cpuinfo)"
  free -g | head -2
  df -h /tmp | tail -1
  openssl speed -evp sha256 -bytes 4194304 -seconds 2 2>/dev/null | tail -1
  python3 -c "import hashlib,os,time; b=os.urandom(1<<30); t=time.perf_counter(); hashlib.sha256(b).digest(); print(f'hashlib sha256 {1.073741824/(time.perf_counter()-t):.2f} GB/s')"
} 2>&1 | tee "$OUT/machine.txt"
[ -n "${PATHS:-}" ] && { timeout ${T_PATHS:-120} python3 bench/pull_paths.py --sqlite --rounds 2 2>&1 | tee "$OUT/paths.txt" || echo "paths: rc=$?"; }
for mode in ${TRANSFER_MODES:-nginx gunicorn}; do  # behind nginx / gunicorn directly
  args=""; [ "$mode" = nginx ] && args="--nginx"
  timeout ${T_TRANSFER:-150} python3 bench/transfer.py --sqlite $args 2>&1 | tee -a "$OUT/transfer.txt" || echo "transfer $args: rc=$?"
done
timeout ${T_LOAD:-200} python3 bench/load.py --sqlite --nginx 2>&1 | tee "$OUT/load.txt" || echo "load: rc=$?"
# the same in memory (tmpfs: fsync costs nothing), which leaves the CPU side of the comparison
if [ -n "${IN_MEMORY:-}" ]; then
  TMPDIR=/dev/shm timeout ${T_TRANSFER:-150} python3 bench/transfer.py --sqlite --nginx 2>&1 | tee -a "$OUT/transfer.txt" || echo "transfer shm: rc=$?"
  TMPDIR=/dev/shm timeout ${T_LOAD:-200} python3 bench/load.py --sqlite --nginx 2>&1 | tee -a "$OUT/load.txt" || echo "load shm: rc=$?"
fi
