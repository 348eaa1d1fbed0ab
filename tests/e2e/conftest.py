"""The reference stack deployed with the real CDK CLI to the local AWS, once per test module, and the Dagster UI
serving its code location."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.constants import PROJECT_DIR
from infra.demo import DEMO_MODULE, DemoReport, deploy, orchestrator_env
from pipeskit.cdk_cli import CdkCli
from pipeskit.local import LocalAWS
from pipeskit.local.testing import free_port

from .dagster_ui import DAGSTER_YAML, DagsterUI, dagster_executable, stop_process_group, wait_until_served


@pytest.fixture(scope="module")
def deployed(local_aws: LocalAWS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoReport]:
    """`cdk bootstrap` and `cdk deploy` of the reference stack (its own ``cdk.out``: modules deploy in parallel),
    on the local AWS enforcing IAM, as `make demo` does: the stack's own policies are what its functions
    and the orchestrator (`infra.demo.orchestrator_env`) may do."""
    with local_aws.override(iam=True):
        report = DemoReport(endpoint=local_aws.endpoint_url)
        cli = CdkCli(PROJECT_DIR, output_dir=tmp_path_factory.mktemp("cdk.out"))
        deploy(report, cli, local_aws.env(), local_aws.settings.account_id, local_aws.settings.region)
        yield report


@pytest.fixture
def as_orchestrator(deployed: DemoReport, local_aws: LocalAWS, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process's AWS environment becomes the orchestrator's (`infra.demo.orchestrator_env`: the keys of an
    IAM user holding only the stack's OrchestratorPolicy), with a new boto3 default session: the old one cached
    the credentials it first resolved (an earlier test's)."""
    import boto3

    env = orchestrator_env(local_aws, deployed)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # restored after the test
    return env


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from the sdist as a release is: no stale ``build/`` of the checkout gets into it."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(PROJECT_DIR)],
        check=True,
        capture_output=True,
    )
    [built] = out.glob("pipes_lambda_kit-*.whl")
    return built


@pytest.fixture(scope="module")
def dagster_ui(
    deployed: DemoReport, local_aws: LocalAWS, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DagsterUI]:
    """``dagster dev -m orchestration.definitions`` in the project root, pointed at the local AWS."""
    executable = dagster_executable()
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    ui = DagsterUI(port=free_port(), log_file=home / "dagster-dev.log")
    # what the demo (infra/demo.py) gives the code location: the local AWS's endpoint, the keys of an IAM user
    # holding only the stack's OrchestratorPolicy, the region
    env = {key: value for key, value in os.environ.items() if key != "AWS_SESSION_TOKEN"}
    env = {**env, **orchestrator_env(local_aws, deployed), "DAGSTER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    command = [str(executable), "dev", "-m", DEMO_MODULE, "-d", str(PROJECT_DIR),
               "-h", "127.0.0.1", "-p", str(ui.port)]
    with ui.log_file.open("wb") as log:
        process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_served(ui, process)
        yield ui
    finally:
        stop_process_group(process)
