"""nginx in front of the registry: the one place its configuration is written.

nginx takes every client connection (slow clients and bulk bytes never hold a gunicorn worker),
buffers request bodies before they reach Django, and serves blob downloads itself from the blob
folder: Django checks who may read a blob and answers with `X-Accel-Redirect` to an internal
location, which nginx serves with sendfile and its own Range support.
"""
from __future__ import annotations

from pathlib import Path

ACCEL_PREFIX = "/_assay_blobs/"  # internal: only an X-Accel-Redirect from Django reaches it


TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def render(*, listen: str, upstream: str, blob_dir: Path, run_dir: Path, user: str, max_chunk_bytes: int = 64 * 1024**2,
           daemon: bool = False, resolver_conf: Path | None = None) -> str:
    """The whole nginx.conf for one registry: `listen` (host:port) in front of gunicorn at
    `upstream` (host:port), with pid, logs and temporary files under `run_dir`; its workers run
    as `user`, who must be able to read the blob folder.

    `resolver_conf`: a file holding a `resolver ...;` line (containers: docker-compose writes it
    from /etc/resolv.conf when nginx starts). The upstream's name is then looked up again every
    10 s, so a recreated `web` container with a new address is found; otherwise nginx resolves
    it once at start and answers 502 after such a move. Without it (one machine, a fixed
    address) gunicorn is an upstream group with kept-alive connections."""
    run_dir, blob_dir = Path(run_dir), Path(blob_dir)
    temp = {name: run_dir / name for name in TEMP_DIRS}
    if resolver_conf is None:
        upstream_block = f"""
    upstream assay_web {{
        server {upstream};
        keepalive 32;
    }}
"""
        proxy_pass = "proxy_pass http://assay_web;"
    else:
        upstream_block = f"""
    include {resolver_conf};
"""
        proxy_pass = f"set $assay_web http://{upstream};\n            proxy_pass $assay_web;  # a variable: looked up again through the resolver"
    return f"""# Written by `manage.py nginx_conf` (registry/nginx.py); regenerate rather than edit.
user {user};
worker_processes auto;
worker_rlimit_nofile 8192;  # 4096 connections, each a client and an upstream socket
pid {run_dir / "nginx.pid"};
error_log {run_dir / "error.log"} warn;
daemon {"on" if daemon else "off"};
events {{ worker_connections 4096; }}

http {{
    include /etc/nginx/mime.types;
    access_log {run_dir / "access.log"};
    client_body_temp_path {temp["client_body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    sendfile on;
    tcp_nopush on;
    server_tokens off;
    # A client that sends its request slowly is dropped by nginx, never handed to gunicorn.
    client_header_timeout 10s;
    client_body_timeout 60s;
    send_timeout 120s;
    keepalive_timeout 30s;
{upstream_block}
    server {{
        listen {listen};
        # One upload chunk at most; the body is buffered by nginx before gunicorn sees it.
        client_max_body_size {max_chunk_bytes};
        client_body_buffer_size 1m;

        location {ACCEL_PREFIX} {{
            internal;
            alias {blob_dir}/;
            default_type application/octet-stream;
            add_header Docker-Content-Digest $upstream_http_docker_content_digest always;
            add_header ETag $upstream_http_etag always;
            add_header Accept-Ranges bytes always;
        }}

        location / {{
            {proxy_pass}
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 600s;
            proxy_send_timeout 600s;
        }}
    }}
}}
"""


def accel_path(blob_relative: Path) -> str:
    """The internal URI nginx serves a blob from (its path under the blob folder)."""
    return ACCEL_PREFIX + str(blob_relative).lstrip("/")
