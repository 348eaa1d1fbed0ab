"""The reference deployment's demo (``make demo``, or ``python -m infra.demo [--port N]``): the main job —
local AWS → ``cdk deploy`` → Dagster materializes assets on Lambda.

1. start the local AWS (moto plus the kit's Lambda runtime) on ``localhost``;
2. ``cdk bootstrap`` and ``cdk deploy`` this deployment's stack with the pinned CDK CLI (`pipeskit.cdk_cli`);
3. materialize ``orchestration.definitions``' assets with real Dagster — every partition of the
   partitioned asset, the multi-asset and the Dagster-docs-style handler — then backfill the 30 days
   of ``daily_order_totals`` in one run: one fan-out over the work queue, a session per day;
4. print what happened, then stop the local AWS.

It is part of the reference deployment, not of the library: it knows this deployment's modules,
assets and functions by name.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from pipeskit.cdk_cli import CdkCli, CdkCliError
from pipeskit.stack_outputs import deployment_env as stack_deployment_env

from .constants import PROJECT_DIR, OutputNames

# The summary is the demo's output; Dagster's console logger would print every event above it.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
DEMO_MODULE = "orchestration.definitions"
# The run tags of a single run over a partition range, as `dagster asset materialize --partition-range`
# and a backfill of an asset with a single-run backfill policy set them.
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


@dataclass
class BackfillReport:
    """The single-run backfill: one run over a partition range, one fan-out.

    Attributes:
        asset: the asset backfilled.
        first: first partition key of the range.
        last: last partition key of the range.
        requested: the partition keys of the range.
        partitions: the partition of each materialization the instance recorded for the asset (a
            partition twice would be a double).
        run_ids: the runs those materializations were recorded in.
        figures: the fan-out's figures, from the run's observation of the asset (items, succeeded,
            failed, duplicates_absorbed, wall_s, items_per_s, ...).
        example: the first partition's materialization, to show what the function reported.
    """

    asset: str
    first: str
    last: str
    requested: list[str] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)
    run_ids: set[str] = field(default_factory=set)
    figures: dict[str, Any] = field(default_factory=dict)
    example: Any = None


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
    backfill: BackfillReport | None = None


@contextmanager
def _step(report: DemoReport, name: str, title: str) -> Iterator[None]:
    print(f"• {title} …", flush=True)
    started = time.perf_counter()
    yield
    report.timings[name] = time.perf_counter() - started


def deploy(report: DemoReport, cli: CdkCli, env: dict[str, str], account: str, region: str) -> None:
    """Bootstrap and deploy the project's stack; read its outputs into ``report``."""
    with _step(report, "cdk bootstrap", "cdk bootstrap (local AWS)"):
        cli.bootstrap(account, region, env)
    outputs_file = (cli.output_dir or cli.project_dir / "build") / "demo-outputs.json"
    with _step(report, "cdk deploy", "cdk deploy pipeskit-dev (layer, functions, buckets, queues, policy)"):
        _, report.outputs = cli.deploy(outputs_file, env)


def deployment_env(outputs: dict[str, str]) -> dict[str, str]:
    """The kit's deployment settings (``PIPESKIT_MESSAGES_BUCKET``, ``PIPESKIT_WORK_QUEUE_URL``, …) from
    the stack's outputs: the buckets and queues the orchestrator's client uses (the fan-out needs them)."""
    return stack_deployment_env(outputs)


def orchestrator_env(aws: Any, report: DemoReport) -> dict[str, str]:
    """The environment Dagster runs with: the local AWS's endpoint, the stack's buckets and queues
    (`deployment_env`) and, when it enforces IAM, the keys of an IAM user holding only the stack's
    `OrchestratorPolicy` (as the role that runs Dagster on AWS would), so a grant the kit needs and the
    policy lacks fails here."""
    env = {**aws.env(), **deployment_env(report.outputs)}
    if not aws.settings.iam:
        return env
    iam = aws.client("iam")
    user = f"pipeskit-orchestrator-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.attach_user_policy(UserName=user, PolicyArn=report.outputs[OutputNames.ORCHESTRATOR_POLICY_ARN])
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {**env, "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def materialize_demo(report: DemoReport) -> None:
    """Materialize the demo assets with real Dagster, collecting events into ``report``; then the
    single-run backfill (`backfill_demo`)."""
    import importlib

    from dagster import DagsterInstance, materialize

    definitions = importlib.import_module(DEMO_MODULE)
    DEMO_PARTITIONS = definitions.DEMO_PARTITIONS
    RESOURCES = definitions.RESOURCES
    daily_orders_summary = definitions.daily_orders_summary
    docs_style_metric = definitions.docs_style_metric
    regional_summaries = definitions.regional_summaries

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
        _count_run(report, result)
        report.materializations += [e.materialization for e in result.get_asset_materialization_events()]
        report.checks += _check_evaluations(result)
    backfill_demo(report, definitions, instance)


def backfill_demo(report: DemoReport, definitions: Any, instance: Any) -> None:
    """Backfill every partition of ``daily_order_totals`` in ONE run, as a backfill of an asset with a
    single-run backfill policy launches it: the range's run tags; the asset fans its partitions out
    over the work queue (a session per day) and records a materialization per partition."""
    from dagster import materialize

    asset = definitions.daily_order_totals
    keys = definitions.BACKFILL_PARTITIONS.get_partition_keys()
    backfill = BackfillReport(asset=asset.key.to_user_string(), first=keys[0], last=keys[-1], requested=keys)
    report.backfill = backfill
    span = f"{backfill.first}...{backfill.last}"
    title = f"backfill {backfill.asset} [{span}]: {len(keys)} partitions in one run, fanned out over the work queue"
    with _step(report, f"backfill {backfill.asset} {span}", title):
        result = materialize([asset], resources=definitions.RESOURCES, instance=instance, raise_on_error=False,
                             run_config=QUIET_CONSOLE, tags={RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]})
    _count_run(report, result)
    # what the instance recorded for the asset: a partition twice, or another run, would show here
    records = instance.fetch_materializations(asset.key, limit=10 * len(keys), ascending=True).records
    backfill.partitions = [r.partition_key for r in records]
    backfill.run_ids = {r.run_id for r in records}
    backfill.example = min(records, key=lambda r: r.partition_key).asset_materialization if records else None
    observations = [e.event_specific_data.asset_observation for e in result.all_events
                    if e.event_type_value == "ASSET_OBSERVATION"]
    if observations:
        backfill.figures = {key: getattr(value, "value", value) for key, value in observations[-1].metadata.items()}
    report.checks += _check_evaluations(result)


def _count_run(report: DemoReport, result: Any) -> None:
    if result.success:
        report.runs_ok += 1
        return
    report.runs_failed += 1
    for failure in result.get_step_failure_events():
        print(f"  ✗ {failure.step_key}: {failure.event_specific_data.error.message.strip()}")


def _check_evaluations(result: Any) -> list[Any]:
    return [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]


def _value(entry: Any) -> str:
    value = getattr(entry, "value", entry)
    text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def print_summary(report: DemoReport) -> None:
    """The readable summary: assets, metadata, checks, the fan-out backfill, where the logs are, timings."""
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
    if report.backfill is not None:
        print_backfill(report.backfill)
    functions = sorted(v for k, v in report.outputs.items() if k.endswith("FunctionName"))
    print("\nWhere the logs are (CloudWatch Logs on the local AWS):")
    for name in functions or ["pipeskit-dev-dataset-summary", "pipeskit-dev-docs-style"]:
        print(f"  /aws/lambda/{name}")
    print("  (this local AWS stops with the demo; `pipeskit local` keeps one up to deploy to and browse)")
    print("\nTimings:")
    for name, seconds in report.timings.items():
        print(f"  {name:<52} {seconds:6.1f} s")
    print()


def backfill_line(figures: dict[str, Any]) -> str:
    """The fan-out's figures on one line."""
    return (
        f"items {figures.get('items', 0)} · succeeded {figures.get('succeeded', 0)} · failed {figures.get('failed', 0)}"
        f" · wall {figures.get('wall_s', 0.0):.1f} s · {figures.get('items_per_s', 0.0):.1f} items/s"
        f" · duplicates absorbed {figures.get('duplicates_absorbed', 0)}"
    )


def print_backfill(backfill: BackfillReport) -> None:
    """The single-run backfill: what was materialized, in how many runs, and the fan-out's figures."""
    print("\nFan-out backfill (single-run backfill policy: the range is one run, its partitions one fan-out):")
    counts = Counter(backfill.partitions)
    doubled = sum(n > 1 for n in counts.values())
    each = f"{doubled} of them more than once" if doubled else "each once"
    missing = len(set(backfill.requested) - set(counts))
    runs = len(backfill.run_ids)
    print(f"  {backfill.asset} [{backfill.first}...{backfill.last}]: {len(counts)} of {len(backfill.requested)} "
          f"partitions materialized, {each}, in {runs} run{'s' if runs != 1 else ''}"
          + (f"; {missing} missing" if missing else ""))  # fmt: skip
    print(f"  {backfill_line(backfill.figures)}" if backfill.figures else "  (no figures: the fan-out did not end)")
    if backfill.example is not None:
        metadata = backfill.example.metadata
        shown = "  ".join(f"{key} {_value(metadata[key])}" for key in ("orders", "revenue", "top_region")
                          if key in metadata)  # fmt: skip
        print(f"  e.g. [{backfill.example.partition}]  {shown}")


def run_demo(port: int | None = None, cdk: str = "") -> int:
    """The whole main job; returns the exit status.

    Args:
        port: port of the local AWS; default from ``PIPESKIT_LOCAL_PORT`` (4566); 0 picks a free one.
        cdk: the CDK CLI to run; default: ``PIPESKIT_CDK``, else the project's pinned one, else the kit's
            (`pipeskit.cdk_cli.CdkCli`).

    Returns:
        0 when every run succeeded and something was materialized, else 1.
    """
    from pipeskit.local import LocalAWS, LocalAWSSettings

    # moto reports every template resource it does not model (CDK metadata, bucket policies); the
    # kit's stack does not depend on them locally, so keep the demo's output to what matters.
    warnings.filterwarnings("ignore", module=r"moto\..*")
    warnings.filterwarnings("ignore", message=r".*(preview|beta|deprecated).*")
    logging.getLogger("moto").setLevel(logging.ERROR)
    report = DemoReport()
    cli = CdkCli(PROJECT_DIR, cdk)
    try:
        cli.executable()  # fail before starting anything when the CLI is missing
    except CdkCliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = LocalAWSSettings.from_env(port=port, quiet=True)
    with LocalAWS(settings) as aws:
        report.endpoint = aws.endpoint_url
        print(f"• local AWS serving on {aws.endpoint_url}", flush=True)
        env = aws.env()
        try:
            deploy(report, cli, env, aws.settings.account_id, aws.settings.region)
        except CdkCliError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        saved = dict(os.environ)
        os.environ.pop("AWS_SESSION_TOKEN", None)  # a token of the caller's would name another identity
        os.environ.update(orchestrator_env(aws, report))  # the Dagster code's default clients use the local AWS
        boto3.setup_default_session()  # with these credentials, not ones an earlier client resolved
        try:
            materialize_demo(report)
        finally:
            os.environ.clear()
            os.environ.update(saved)
    print_summary(report)
    sys.stdout.flush()
    return 0 if report.runs_failed == 0 and report.materializations else 1


def build_parser() -> argparse.ArgumentParser:
    """The demo's arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.demo",
        description="Start the local AWS, `cdk deploy` this deployment's stack to it with the pinned CDK CLI, "
        "materialize the demo assets with Dagster (the functions really run), print a summary, stop.",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="port of the local AWS (default: PIPESKIT_LOCAL_PORT, else 4566; 0 picks a free one)",
    )
    parser.add_argument(
        "--cdk", help="CDK CLI to run (default: PIPESKIT_CDK, else the project's node_modules/.bin/cdk)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo with the command line's arguments; returns the exit status."""
    args = build_parser().parse_args(argv)
    return run_demo(port=args.port, cdk=args.cdk or "")


if __name__ == "__main__":
    sys.exit(main())
