"""CloudWatch Logs read rate of 50 concurrent sessions in 50 processes: one budget for the host, against one each.

Dagster's multiprocess executor runs each step in its own process. One job of 50 assets, each a Pipes
session on the CloudWatch Logs channel (``PipesLambdaClient(message_reader=CloudWatchLogsMessageReader())``
with the kit's defaults: a budget of 4 reads per second, ``BENCH_LOGS_READ_TPS`` to change it), runs
under that executor with ``max_concurrent`` 50 against the local AWS in a child process, which answers
``ThrottlingException`` above 5 Logs read calls per second (FilterLogEvents' quota per account and
region) and shows log lines 1 s after they were written, as CloudWatch's ingestion does. Every step
process records when each Logs read request left it (botocore's ``before-send``, after the kit's own
handler that waits for a token: retries included, as CloudWatch counts them) and which were throttled;
the figure is the most requests in any sliding one-second window, over all 50 processes.

The job runs twice: with the kit's default host-wide budget (``PIPESKIT_LOGS_BUDGET_SCOPE=host``) and,
as the "before" figure, with a budget per process (``process``). dagster-aws has no reader that reads
a whole invocation's log, so there is no peer. A last figure is what one token costs: an acquisition
of the host-wide budget's file-backed bucket, never waiting (target: well under 3 ms).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    DagsterInstance,
    Definitions,
    JobDefinition,
    ResourceParam,
    asset,
    define_asset_job,
    execute_job,
    multiprocess_executor,
    reconstructable,
)

from bench.child_aws import ChildAWS
from bench.results import record
from infra.constants import LAYER_REQUIREMENTS, PROJECT_DIR
from pipeskit import CloudWatchLogsMessageReader, PipesLambdaClient
from pipeskit.local.testing import busiest_second, deploy_pipes_function, lambda_role, publish_pipes_layer

NAME = "bench_logs_budget"
HANDLER = PROJECT_DIR / "tests" / "integration" / "handlers" / "noisy.py"
SESSIONS = int(os.environ.get("BENCH_LOGS_BUDGET_SESSIONS", "50"))
READ_TPS = os.environ.get("BENCH_LOGS_READ_TPS", "4")  # the kit's budget (PIPESKIT_LOGS_READ_TPS), its default
QUOTA_TPS = 5  # the local AWS's, as CloudWatch's FilterLogEvents quota
MESSAGES = 20
EVENT = {"messages": MESSAGES, "noise_bytes": 40_000}
READ_OPERATIONS = ("GetLogEvents", "FilterLogEvents", "DescribeLogStreams")
SCENARIO_TIMEOUT_S = 600
FUNCTION_ENV = "BENCH_LOGS_BUDGET_FUNCTION"
OUT_ENV = "BENCH_LOGS_BUDGET_OUT"
SCOPES = {"process": "a budget per process (before)", "host": "one budget for the host"}


# --- the job: runs in the step processes ---------------------------------------------------------


def _append(path: Path, line: str) -> None:
    with open(path, "a", encoding="utf-8") as out:  # one small append per line: whole lines, from any process
        out.write(line + "\n")


def record_logs_requests(out: Path) -> None:
    """Record, in this process's file in ``out``, each Logs read request leaving it and each throttled one.

    Registered on boto3's default session before the reader creates its client, so the kit's default
    client (created on first use) carries the hooks.
    """
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    path = out / f"{os.getpid()}.requests"

    def sent(event_name: str = "", **_: Any) -> None:
        if event_name.rsplit(".", 1)[-1] in READ_OPERATIONS:
            _append(path, f"sent {time.time():.6f}")

    def answered(response: Any = None, **_: Any) -> None:
        code = ((response or (None, {}))[1] or {}).get("Error", {}).get("Code")
        if code:
            _append(path, f"error {time.time():.6f} {code}")

    events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
    events.register_last("before-send.logs", sent)  # after the kit's own handler, which waits for a token
    events.register("needs-retry.logs", answered)


def session_asset(n: int) -> AssetsDefinition:
    """One asset: one Pipes session on the CloudWatch Logs channel, in its own step process."""

    @asset(name=f"session_{n:02d}")
    def session(context: AssetExecutionContext, lambda_pipes: ResourceParam[PipesLambdaClient]) -> Iterator[Any]:
        out = Path(os.environ[OUT_ENV])
        record_logs_requests(out)
        completed = lambda_pipes.run(context=context, function_name=os.environ[FUNCTION_ENV], event=EVENT)
        delivered = len(completed.get_custom_messages())
        _append(out / f"{os.getpid()}.outcome", f"{context.asset_key.to_user_string()} {delivered}")
        yield from completed.get_results()

    return session


defs = Definitions(
    assets=[session_asset(n) for n in range(SESSIONS)],
    # The defaults of a code location: clients and settings from the environment, created on first use.
    resources={"lambda_pipes": PipesLambdaClient(message_reader=CloudWatchLogsMessageReader())},
    jobs=[define_asset_job("logs_budget", executor_def=multiprocess_executor)],
)


def logs_budget_job() -> JobDefinition:
    """The job of `SESSIONS` sessions, for `reconstructable` (each step process loads it by name)."""
    return defs.resolve_job_def("logs_budget")


RUN_CONFIG = {
    "execution": {
        "config": {
            "max_concurrent": SESSIONS,
            # As a deployment that cares for step start-up would: dagster and the kit imported once.
            "start_method": {"forkserver": {"preload_modules": [f"bench.{NAME}"]}},
        }
    },
    "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
}


def run_scenario() -> None:
    """Run the job once, in this process and its step processes; the environment says how."""
    warnings.filterwarnings("ignore")
    from bench import bench_logs_budget as this  # under its module name: the step processes load it by that

    out = Path(os.environ[OUT_ENV])
    with tempfile.TemporaryDirectory() as home:
        instance = DagsterInstance.local_temp(home)
        job = reconstructable(this.logs_budget_job)
        result = execute_job(job, instance, run_config=RUN_CONFIG, raise_on_error=False)
        failures = [
            f"{event.step_key}: {event.step_failure_data.error.message.strip().splitlines()[0]}"
            for event in result.get_step_failure_events()
            if event.step_failure_data.error
        ]
    (out / "failures.json").write_text(json.dumps(failures))


# --- the benchmark: runs the job under each budget scope -------------------------------------------


def measure(scope: str, endpoint: str, function: str) -> dict[str, Any]:
    """Run the job in a process of its own with ``scope``; what its step processes recorded."""
    with tempfile.TemporaryDirectory() as work:
        out, budgets = Path(work) / "out", Path(work) / "budgets"
        out.mkdir()
        env = {
            **os.environ,
            "PYTHONWARNINGS": "ignore",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "PIPESKIT_LOGS_READ_TPS": READ_TPS,
            "PIPESKIT_LOGS_BUDGET_SCOPE": scope,
            "PIPESKIT_LOGS_BUDGET_DIR": str(budgets),
            FUNCTION_ENV: function,
            OUT_ENV: str(out),
        }
        started = time.perf_counter()
        with open(Path(work) / "scenario.log", "w+", encoding="utf-8") as log:  # Dagster's step logs
            done = subprocess.run([sys.executable, "-m", f"bench.{NAME}", "scenario"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, timeout=SCENARIO_TIMEOUT_S, check=False)  # fmt: skip
            if done.returncode:
                log.seek(0)
                print(log.read()[-5000:], file=sys.stderr)
                raise RuntimeError(f"the job with PIPESKIT_LOGS_BUDGET_SCOPE={scope} crashed (exit {done.returncode})")
        wall = time.perf_counter() - started
        sent, errors, delivered = [], [], []
        processes = 0
        for path in out.glob("*.requests"):
            processes += 1
            for line in path.read_text().splitlines():
                kind, at, *code = line.split()
                (sent if kind == "sent" else errors).append((float(at), *code))
        for path in out.glob("*.outcome"):
            delivered += [int(line.split()[1]) for line in path.read_text().splitlines()]
        failures = json.loads((out / "failures.json").read_text())
    return {
        "wall": wall,
        "processes": processes,
        "requests": len(sent),
        "busiest": busiest_second([at for at, *_ in sent]),
        "throttled": sum(1 for _, code in errors if code == "ThrottlingException"),
        "failed": max(SESSIONS - len(delivered), len(failures)),
        "delivered": sum(delivered),
        "failures": failures,
    }


def warm_up(aws: Any, function: str) -> None:
    """One warm execution environment per session, so that both runs start alike (the first not paying inits)."""
    lam = aws.client("lambda", read_timeout=300, retries=0)
    with ThreadPoolExecutor(SESSIONS) as pool:
        list(pool.map(lambda _: lam.invoke(FunctionName=function, Payload=b"{}"), range(SESSIONS)))


def main() -> None:
    warnings.filterwarnings("ignore")
    faults = {"PIPESKIT_LOCAL_LOGS_READ_TPS": str(QUOTA_TPS), "PIPESKIT_LOCAL_LOG_INGESTION_DELAY_S": "1"}
    with ChildAWS(env=faults) as aws:
        lam = aws.client("lambda", read_timeout=300, retries=0)
        function = deploy_pipes_function(
            lam, code=HANDLER, user_handler="noisy.lambda_handler",
            layer_arn=publish_pipes_layer(lam, LAYER_REQUIREMENTS), role_arn=lambda_role(aws.client("iam")),
        )  # fmt: skip
        print(f"{SESSIONS} sessions of {MESSAGES} messages, one Dagster step process each (multiprocess executor); "
              f"budget {READ_TPS} reads/s; the local AWS throttles above {QUOTA_TPS}/s, ingests logs after 1 s\n")
        print(f"{'budget':<32}{'processes':>10}{'reads sent':>11}{'max in 1 s':>11}{'throttled':>10}"
              f"{'failed':>7}{'delivered':>12}{'wall (s)':>9}", flush=True)
        rows = {}
        for scope, label in SCOPES.items():
            row = rows[scope] = measure(scope, aws.endpoint_url, function)
            delivered = f"{row['delivered']}/{SESSIONS * MESSAGES}"
            print(f"{label:<32}{row['processes']:>10}{row['requests']:>11}{row['busiest']:>11}{row['throttled']:>10}"
                  f"{row['failed']:>7}{delivered:>12}{row['wall']:>9.1f}", flush=True)
            for failure in row["failures"][:3]:
                print(f"    {failure[:150]}")
    print()
    host, before = rows["host"], rows["process"]
    figure = f"CloudWatch read rate, max over 1 s windows ({SESSIONS} sessions in {SESSIONS} processes)"
    record(NAME, figure, "req/s", kit=host["busiest"], target=f"≤ {QUOTA_TPS} req/s", met=host["busiest"] <= QUOTA_TPS)
    record(NAME, "failed sessions", "sessions", kit=host["failed"], target="0", met=host["failed"] == 0)
    delivered = 100 * host["delivered"] / (SESSIONS * MESSAGES)
    record(NAME, "messages delivered", "%", kit=delivered, target="100 %", met=delivered == 100, higher_is_better=True)
    record(NAME, "throttled CloudWatch reads", "calls", kit=host["throttled"])
    record(NAME, f"{figure}, budget per process (before)", "req/s", kit=before["busiest"])
    record(NAME, "throttled CloudWatch reads, budget per process (before)", "calls", kit=before["throttled"])
    record(NAME, "failed sessions, budget per process (before)", "sessions", kit=before["failed"])
    token_ms = acquisition_ms()
    record(NAME, "one token of the host-wide budget (an acquisition that never waits)", "ms", kit=token_ms,
           target="≤ 3 ms", met=token_ms <= 3)  # fmt: skip


def acquisition_ms(acquisitions: int = 2_000) -> float:
    """Median milliseconds of one acquisition of a file-backed budget too generous to ever wait."""
    from pipeskit.rate_limit import RateBudget

    with tempfile.TemporaryDirectory() as directory:
        budget = RateBudget(1_000_000, path=Path(directory) / "budget.sqlite")
        budget.acquire()
        times = []
        for _ in range(acquisitions):
            started = time.perf_counter()
            budget.acquire()
            times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[len(times) // 2]


if __name__ == "__main__":
    if sys.argv[1:] == ["scenario"]:
        run_scenario()
    else:
        main()
