"""Write nginx.conf for this registry (registry/nginx.py): nginx on --listen in front of
gunicorn on --upstream, serving blob downloads itself. Serve with ASSAY_NGINX=1 (settings)."""
import getpass
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from registry.nginx import TEMP_DIRS, render


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--listen", default="127.0.0.1:8000", help="host:port nginx listens on")
        parser.add_argument("--upstream", default="127.0.0.1:8001", help="host:port of gunicorn")
        parser.add_argument("--run-dir", default=str(Path(settings.VAR_DIR) / "nginx"), help="pid, logs and temporary files")
        parser.add_argument("--out", default=None, help="file to write (default RUN_DIR/nginx.conf)")
        parser.add_argument("--blob-dir", default=None, help="the blob folder as nginx sees it (default ASSAY_BLOB_DIR)")
        parser.add_argument("--user", default=getpass.getuser(), help="user nginx's workers run as (default: this one)")
        parser.add_argument("--resolver-conf", default=None,
                            help="a file with a `resolver ...;` line: look the upstream's name up again while running (containers)")

    def handle(self, *args, listen, upstream, run_dir, out, blob_dir, user, resolver_conf, **options):
        run = Path(run_dir).resolve() if out is None else Path(run_dir)
        if out is None:  # a config for this machine: make its folders
            for name in TEMP_DIRS:
                (run / name).mkdir(parents=True, exist_ok=True)
        blobs = Path(blob_dir) if blob_dir else Path(settings.ASSAY_BLOB_DIR).resolve()
        path = Path(out) if out else run / "nginx.conf"
        path.write_text(render(listen=listen, upstream=upstream, blob_dir=blobs, run_dir=run, user=user,
                                   resolver_conf=Path(resolver_conf) if resolver_conf else None))
        self.stdout.write(str(path.resolve()))
