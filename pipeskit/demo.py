"""The demo, the kit's main job: local AWS → ``cdk deploy`` → Dagster materializes assets on Lambda.

1. start the local AWS (moto plus the kit's Lambda runtime) on ``localhost``;
2. ``cdk bootstrap`` and ``cdk deploy`` the kit's stack with the pinned CDK CLI;
3. materialize ``orchestration.definitions``' assets with real Dagster — every partition of the
   partitioned asset, the multi-asset and the Dagster-docs-style handler;
4. print what happened, then stop the local AWS.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from infra.constants import REPO_ROOT

OUTPUTS_FILE = REPO_ROOT / "build" / "demo-outputs.json"
# The summary is the demo's output; Dagster's console logger would print every event above it.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def resolve_cdk(cdk: str | None) -> str:
    """The CDK CLI to run: the one asked for, else the repo's pinned one, else whatever is on PATH."""
    if cdk:
        return cdk
    pinned = REPO_ROOT / "node_modules" / ".bin" / "cdk"
    if pinned.exists():
        return str(pinned)
    found = shutil.which("cdk")
    if not found:
        raise SystemExit("error: the CDK CLI is not installed; run `make install` (npm ci) first")
    return found


def run_cdk(cdk: str, arguments: Sequence[str], env: dict[str, str]) -> float:
    """Run the CDK CLI from the repo root; returns its wall time, exits with its output on failure."""
    started = time.perf_counter()
    result = subprocess.run(
        [cdk, *arguments], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"`cdk {' '.join(arguments)}` failed:\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - started


@dataclass
class DemoReport:
    """What the demo did, for the summary."""

    endpoint: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    materializations: list[Any] = field(default_factory=list)
    checks: list[Any] = field(default_factory=list)
    runs_ok: int = 0
    runs_failed: int = 0


@contextmanager
def _step(report: DemoReport, name: str, title: str) -> Iterator[None]:
    print(f"• {title} …", flush=True)
    started = time.perf_counter()
    yield
    report.timings[name] = time.perf_counter() - started


def deploy(report: DemoReport, cdk: str, env: dict[str, str], account: str, region: str) -> None:
    """Bootstrap and deploy the kit's stack; read its outputs into ``report``."""
    with _step(report, "cdk bootstrap", "cdk bootstrap (local AWS)"):
        run_cdk(cdk, ["bootstrap", f"aws://{account}/{region}"], env)
    OUTPUTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    with _step(report, "cdk deploy", "cdk deploy pipeskit-dev (layer, functions, buckets, queues, policy)"):
        run_cdk(cdk, ["deploy", "--require-approval", "never", "--outputs-file", str(OUTPUTS_FILE)], env)
    outputs = json.loads(OUTPUTS_FILE.read_text()) if OUTPUTS_FILE.exists() else {}
    report.outputs = next(iter(outputs.values()), {})


def materialize_demo(report: DemoReport) -> None:
    """Materialize the demo assets with real Dagster, collecting events into ``report``."""
    from dagster import DagsterInstance, materialize

    from orchestration.definitions import (
        DEMO_PARTITIONS,
        RESOURCES,
        daily_orders_summary,
        docs_style_metric,
        regional_summaries,
    )

    instance = DagsterInstance.ephemeral()
    plan: list[tuple[list[Any], str | None]] = [
        ([daily_orders_summary], key) for key in DEMO_PARTITIONS.get_partition_keys()
    ]
    plan.append(([regional_summaries, docs_style_metric], None))
    for assets, partition_key in plan:
        label = ", ".join(a.node_def.name for a in assets)
        with _step(report, f"materialize {label} {partition_key or ''}".strip(),
                   f"materialize {label}" + (f" [{partition_key}]" if partition_key else "")):
            result = materialize(assets, resources=RESOURCES, partition_key=partition_key,
                                 instance=instance, raise_on_error=False, run_config=QUIET_CONSOLE)
        if result.success:
            report.runs_ok += 1
        else:
            report.runs_failed += 1
            for failure in result.get_step_failure_events():
                print(f"  ✗ {failure.step_key}: {failure.event_specific_data.error.message.strip()}")
        report.materializations += [e.materialization for e in result.get_asset_materialization_events()]
        report.checks += [e.event_specific_data for e in result.all_events
                          if e.event_type_value == "ASSET_CHECK_EVALUATION"]


def _value(entry: Any) -> str:
    value = getattr(entry, "value", entry)
    text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def print_summary(report: DemoReport) -> None:
    """The readable summary: assets, metadata, checks, where the logs are, timings."""
    print("\n" + "=" * 78)
    print(f"pipes-lambda-kit demo — local AWS at {report.endpoint}")
    print("=" * 78)
    print(f"\nRuns: {report.runs_ok} succeeded, {report.runs_failed} failed\n")
    print("Materializations:")
    for m in report.materializations:
        partition = f" [{m.partition}]" if m.partition else ""
        print(f"  ✔ {m.asset_key.to_user_string()}{partition}")
        for key in ("rows", "mean_amount", "orders_by_region", "some_metric", "lambda_request_id"):
            if key in m.metadata:
                print(f"      {key:<18} {_value(m.metadata[key])}")
    print("\nAsset checks:")
    for c in report.checks:
        mark = "✔ passed" if c.passed else "✗ failed"
        print(f"  {mark}  {c.asset_key.to_user_string()}:{c.check_name}")
    functions = sorted(v for k, v in report.outputs.items() if k.endswith("FunctionName"))
    print("\nWhere the logs are (CloudWatch Logs on the local AWS):")
    for name in functions or ["pipeskit-dev-dataset-summary", "pipeskit-dev-docs-style"]:
        print(f"  /aws/lambda/{name}")
    print("  (this local AWS stops with the demo; `pipeskit local` keeps one up to deploy to and browse)")
    print("\nTimings:")
    for name, seconds in report.timings.items():
        print(f"  {name:<52} {seconds:6.1f} s")
    print()


def run_demo(args: argparse.Namespace) -> int:
    """``pipeskit demo``: the whole main job; returns the exit status."""
    from local_aws import LocalAWS

    # moto reports every template resource it does not model (CDK metadata, bucket policies); the
    # kit's stack does not depend on them locally, so keep the demo's output to what matters.
    warnings.filterwarnings("ignore", module=r"moto\..*")
    warnings.filterwarnings("ignore", message=r".*(preview|beta|deprecated).*")
    logging.getLogger("moto").setLevel(logging.ERROR)
    report = DemoReport()
    cdk = resolve_cdk(args.cdk)
    with LocalAWS(port=args.port, quiet=True) as aws:
        report.endpoint = aws.endpoint_url
        print(f"• local AWS serving on {aws.endpoint_url}", flush=True)
        env = {**os.environ, **aws.env(), "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
        deploy(report, cdk, env, aws.settings.account_id, aws.settings.region)
        saved = dict(os.environ)
        os.environ.update(aws.env())  # the Dagster code's default boto3 clients use the local AWS
        try:
            materialize_demo(report)
        finally:
            os.environ.clear()
            os.environ.update(saved)
    print_summary(report)
    sys.stdout.flush()
    return 0 if report.runs_failed == 0 and report.materializations else 1
