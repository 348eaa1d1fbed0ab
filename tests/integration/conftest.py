"""Fixtures for Pipes sessions against the local AWS: the real pipes layer, real Dagster."""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    DagsterInstance,
    DagsterRunStatus,
    ExecuteInProcessResult,
    PartitionsDefinition,
    asset,
    materialize,
)

from infra.constants import LAMBDAS_DIR, LAYER_REQUIREMENTS, PROJECT_DIR
from pipeskit import (
    LambdaClientSettings,
    LogsReaderSettings,
    PipesLambdaClient,
    RateBudget,
    ResponsePayloadMessageReader,
)
from pipeskit.channels import LambdaMessageReader
from pipeskit.local import LocalAWS
from pipeskit.local.testing import ApiCallCounter, deploy_pipes_function, lambda_role, publish_pipes_layer

HANDLERS_DIR = Path(__file__).parent / "handlers"


@pytest.fixture(scope="session")
def role_arn(local_aws: LocalAWS) -> str:
    """An IAM role functions can be created with."""
    return lambda_role(local_aws.client("iam"))


@pytest.fixture(scope="session")
def pipes_layer_arn(local_aws: LocalAWS) -> str:
    """The real pipes layer zip (built by pipeskit.layer_build.build_layer), published to the local AWS."""
    return publish_pipes_layer(local_aws.client("lambda"), LAYER_REQUIREMENTS)


@pytest.fixture(scope="session")
def pipes_function(local_aws: LocalAWS, pipes_layer_arn: str, role_arn: str) -> Callable[..., str]:
    """Deploy a handler file or directory with the pipes layer, as the stack does; once per key."""
    created: dict[tuple[Any, ...], str] = {}
    lam = local_aws.client("lambda")

    def _deploy(
        path: Path, user_handler: str, *, timeout: int = 30, entrypoint: bool = True, log_format: str = "Text",
        fresh: bool = False,
    ) -> str:
        """``fresh``: a function of the test's own (e.g. a handler without the kit, whose warm environment
        serves one Pipes session only, dagster#22094)."""
        key = (path, user_handler, timeout, entrypoint, log_format, uuid.uuid4() if fresh else None)
        if key not in created:
            created[key] = deploy_pipes_function(
                lam, code=path, user_handler=user_handler, layer_arn=pipes_layer_arn,
                role_arn=role_arn, timeout_s=timeout, entrypoint=entrypoint, log_format=log_format,
            )  # fmt: skip
        return created[key]

    return _deploy


@pytest.fixture
def bucket(local_aws: LocalAWS) -> str:
    """A fresh messages bucket."""
    name = f"messages-{uuid.uuid4().hex[:10]}"
    local_aws.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["Text", "JSON"])
def log_format(request: pytest.FixtureRequest) -> str:
    """Both of Lambda's log formats (``LoggingConfig.LogFormat``): the orchestrator reads either."""
    return request.param


@pytest.fixture(scope="session")
def handler_function(pipes_function: Callable[..., str]) -> Callable[..., str]:
    """Deploy ``tests/integration/handlers/<module>.py``."""

    def _deploy(module: str, function: str = "handler", **kwargs: Any) -> str:
        return pipes_function(HANDLERS_DIR / f"{module}.py", f"{module}.{function}", **kwargs)

    return _deploy


@pytest.fixture(scope="session")
def example_function(pipes_function: Callable[..., str]) -> Callable[..., str]:
    """Deploy one of ``lambdas/``' examples as the stack would."""

    def _deploy(code_dir: str, user_handler: str, **kwargs: Any) -> str:
        return pipes_function(LAMBDAS_DIR / code_dir, user_handler, **kwargs)

    return _deploy


@pytest.fixture
def make_client(local_aws: LocalAWS) -> Callable[..., tuple[PipesLambdaClient, ApiCallCounter]]:
    """A kit client bound to the local AWS, with fast log polling and an API call counter."""

    def _make(
        reader: type[LambdaMessageReader] = ResponsePayloadMessageReader,
        *,
        budget: RateBudget | None = None,
        logs_retries: int = 3,
        logs_client: Any | None = None,
        client_settings: LambdaClientSettings | None = None,
        **logs_overrides: Any,
    ) -> tuple[PipesLambdaClient, ApiCallCounter]:
        counter = ApiCallCounter()
        settings = LogsReaderSettings(**{"ingestion_timeout_s": 15.0, "poll_interval_s": 0.05, **logs_overrides})
        lambda_client = counter.attach(local_aws.client("lambda", retries=0, read_timeout=120))
        message_reader = reader(
            logs_client=counter.attach(logs_client or local_aws.client("logs", retries=logs_retries)),
            lambda_client=lambda_client,
            settings=settings,
            budget=budget or RateBudget(50),
        )
        return PipesLambdaClient(client=lambda_client, message_reader=message_reader, settings=client_settings), counter

    return _make


class Materialized:
    """What one materialization produced: the Dagster result and the completed invocation."""

    def __init__(self, result: ExecuteInProcessResult, captured: dict[str, Any], instance: DagsterInstance) -> None:
        self.result = result
        self.instance = instance
        self.completed = captured.get("completed")
        self.error = captured.get("error")
        self.elapsed_s: float = captured.get("elapsed_s", 0.0)  # of the client's run() call alone

    def materializations(self) -> list[Any]:
        return self.result.get_asset_materialization_events()

    def metadata(self) -> dict[str, Any]:
        [event] = self.materializations()
        return dict(event.materialization.metadata)

    def check_results(self) -> dict[str, Any]:
        return {
            e.event_specific_data.check_name: e.event_specific_data  # type: ignore[union-attr]
            for e in self.result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
        }

    def engine_events(self) -> list[str]:
        """Messages of the run's engine events (e.g. a Pipes session closed with an exception)."""
        return [
            e.user_message
            for e in self.instance.all_logs(self.result.run_id)
            if e.is_dagster_event and e.dagster_event.event_type_value == "ENGINE_EVENT"
        ]

    def log_messages(self) -> list[tuple[int, str]]:
        """(level, message) of every log record of the run, in order."""
        return [(e.level, e.user_message) for e in self.instance.all_logs(self.result.run_id) if not e.is_dagster_event]


def run_asset(
    client: PipesLambdaClient,
    function_name: str,
    event: dict[str, Any],
    *,
    checks: Sequence[str] = (),
    partitions_def: PartitionsDefinition | None = None,
    partition_key: str | None = None,
    extras: dict[str, Any] | None = None,
    invocation_type: str = "RequestResponse",
) -> Materialized:
    """Materialize one asset whose body runs ``function_name`` through ``client``."""
    captured: dict[str, Any] = {}

    @asset(
        name="lambda_asset",
        check_specs=[AssetCheckSpec(name, asset="lambda_asset") for name in checks],
        partitions_def=partitions_def,
    )
    def lambda_asset(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
        started = time.monotonic()
        try:
            completed = lambda_pipes.run(
                context=context, function_name=function_name, event=event, extras=extras,
                invocation_type=invocation_type,
            )  # fmt: skip
        except Exception as error:
            captured["error"] = error
            raise
        finally:
            captured["elapsed_s"] = time.monotonic() - started
        captured["completed"] = completed
        yield from completed.get_results()

    instance = DagsterInstance.ephemeral()
    result = materialize(
        [lambda_asset],
        resources={"lambda_pipes": client},
        partition_key=partition_key,
        raise_on_error=False,
        instance=instance,
    )
    return Materialized(result, captured, instance)


def job_process_command(job: str, parent_run_id: str | None = None) -> list[str]:
    """A Python command executing ``job`` (``module:name``) in its own process, as Dagster launches runs, on
    ``DagsterInstance.get()`` (``DAGSTER_HOME``); with ``parent_run_id``, as its re-execution. It prints
    ``RUN <run id> <success>``."""
    module, name = job.split(":")
    code = (
        "import sys\n"
        "from dagster import DagsterInstance, ReexecutionOptions, execute_job, reconstructable\n"
        f"from {module} import {name}\n"
        "parent = sys.argv[1] if len(sys.argv) > 1 else None\n"
        "options = ReexecutionOptions(parent_run_id=parent) if parent else None\n"
        f"result = execute_job(reconstructable({name}), instance=DagsterInstance.get(),\n"
        "                     reexecution_options=options)\n"
        "print('RUN', result.run_id, result.success)\n"
    )
    return [sys.executable, "-c", code, *([parent_run_id] if parent_run_id else [])]


def start_job(job: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> subprocess.Popen[bytes]:
    """Run ``job`` in a process of its own (`job_process_command`) on the instance in ``env["DAGSTER_HOME"]``
    (telemetry off), ``env`` set in this process too: the test and the run's re-execution read that instance."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (Path(env["DAGSTER_HOME"]) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return subprocess.Popen(job_process_command(job), cwd=PROJECT_DIR, env={**os.environ, **env})


def kill_and_re_execute(
    orchestrator: subprocess.Popen[bytes], job: str, env: dict[str, str]
) -> tuple[DagsterInstance, str]:
    """SIGKILL the run's process (`job_process_command`), mark the run failed as Dagster's run monitoring does for a
    dead run worker, and re-execute it in a process of its own; returns the instance and the new run's id."""
    orchestrator.send_signal(signal.SIGKILL)
    orchestrator.wait()
    instance = DagsterInstance.get()
    [killed] = instance.get_runs()
    assert killed.status == DagsterRunStatus.STARTED, "killed: nobody marked the run ended"
    instance.report_run_failed(killed)
    second = subprocess.run(job_process_command(job, killed.run_id), cwd=PROJECT_DIR, env={**os.environ, **env},
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    [line] = [line for line in second.stdout.splitlines() if line.startswith("RUN ")]
    _, run_id, success = line.split()
    assert success == "True", second.stderr[-3000:]
    return instance, run_id
