"""The ``pipeskit local`` command.

Starts the local AWS, prints the ``export`` lines to point tools at it, and serves
until Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from typing import Any

from pipeskit.local.server import LocalAWS
from pipeskit.local.settings import LocalAWSSettings


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the local AWS options to ``parser``.

    Args:
        parser: The (sub)command parser.
    """
    parser.add_argument("--port", type=int, default=None, help="TCP port (default 4566; 0 picks a free one)")
    parser.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    parser.add_argument("--logs-read-tps", type=float, default=None,
                        help="fault: throttle CloudWatch Logs reads to N requests/s")
    parser.add_argument("--log-ingestion-delay", type=float, default=None, metavar="SECONDS",
                        help="fault: log events become visible after SECONDS")
    parser.add_argument("--log-stream-delay", type=float, default=None, metavar="SECONDS",
                        help="fault: a new log stream appears SECONDS after its first line")
    parser.add_argument("--invoke-throttle-rate", type=float, default=None, metavar="FRACTION",
                        help="fault: reject this fraction of Lambda invocations with 429")
    parser.add_argument("--s3-slow-down-rate", type=float, default=None, metavar="FRACTION",
                        help="fault: answer this fraction of S3 requests with 503 SlowDown")
    parser.add_argument("--s3-slow-down-per-key", type=int, default=None, metavar="N",
                        help="fault: answer each S3 key's (or listing's) first N requests with 503 SlowDown")
    parser.add_argument("--iam", action=argparse.BooleanOptionalAction, default=None,
                        help="enforce IAM: authorize every request, print an administrator's keys (the default; "
                        "--no-iam for quick experiments)")
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")


FLAG_SETTINGS = {
    "port": "port",
    "host": "bind_address",
    "logs_read_tps": "logs_read_tps",
    "log_ingestion_delay": "log_ingestion_delay_s",
    "log_stream_delay": "log_stream_delay_s",
    "invoke_throttle_rate": "invoke_throttle_rate",
    "s3_slow_down_rate": "s3_slow_down_rate",
    "s3_slow_down_per_key": "s3_slow_down_per_key",
    "iam": "iam",
}
"""Each flag's destination (``--log-ingestion-delay`` → ``log_ingestion_delay``) and the
`LocalAWSSettings` field it sets."""


def settings_from_args(args: argparse.Namespace) -> LocalAWSSettings:
    """Settings from the environment, overridden by command line flags.

    Raises:
        SettingsError: a flag's value is out of bounds (the error names the flag, e.g. ``--port``),
            or a ``PIPESKIT_LOCAL_*`` variable is invalid (the error names the variable).
    """
    overrides: dict[str, Any] = {field: getattr(args, dest) for dest, field in FLAG_SETTINGS.items()}
    sources = {field: "--" + dest.replace("_", "-") for dest, field in FLAG_SETTINGS.items()}
    if args.verbose:
        overrides["quiet"] = False
    return LocalAWSSettings.from_env(sources=sources, **overrides)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted.

    Args:
        args: Parsed options (see :func:`configure_parser`).

    Returns:
        The exit status.
    """
    settings = settings_from_args(args)  # an invalid flag or variable: nothing started, no handler changed
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = LocalAWS(settings)
    try:
        server.start()
        env = server.env()
        for name, value in env.items():
            print(f"export {name}={shlex.quote(value)}")
        if "AWS_SESSION_TOKEN" not in env:  # the administrator's keys are long-term ones
            print("unset AWS_SESSION_TOKEN")
        print(f"# local AWS serving on {server.endpoint_url}; Ctrl-C to stop", file=sys.stderr)
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
