"""The local AWS in a child process, for benchmarks that measure the orchestrator's own cost.

In the benchmark's process, the local AWS's server threads would share its interpreter (and GIL)
with the client being measured; in a child process, this process's CPU time and memory are the
orchestrator's alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import boto3
from botocore.config import Config

from pipeskit.local.testing import free_port


class ChildAWS:
    """The local AWS in its own process, so that this process's usage is the orchestrator's alone."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        """Start it; ``env`` adds variables (e.g. ``PIPESKIT_LOCAL_LOGS_READ_TPS`` for a fault)."""
        self.port = free_port()
        # IAM is not what the benchmarks measure: the peer's client and the kit's run with dummy keys
        env = {**os.environ, "PIPESKIT_LOCAL_IAM": "false", **(env or {}), "PIPESKIT_LOCAL_PORT": str(self.port)}
        self.process = subprocess.Popen([sys.executable, "-m", "pipeskit", "local"], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while True:
            try:
                self.client("s3").list_buckets()
                return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the local AWS did not start") from None
                time.sleep(0.2)

    def client(self, service: str, read_timeout: float = 60, retries: int = 2) -> Any:
        return boto3.client(
            service, endpoint_url=f"http://localhost:{self.port}", region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(read_timeout=read_timeout, retries={"total_max_attempts": retries + 1},
                          max_pool_connections=32),
        )  # fmt: skip

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    @property
    def endpoint_url(self) -> str:
        """The endpoint URL to give boto3."""
        return f"http://localhost:{self.port}"

    def __enter__(self) -> ChildAWS:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
