"""A drop-in for dagster-aws's client: functions with no kit code, dagster#22094, `pipeskit adopt`."""

import subprocess
import sys
from pathlib import Path

import dagster_pipes
import pytest
from dagster_aws.pipes import PipesLambdaEventContextInjector as DagsterAwsEventInjector

from pipeskit import PipesContextReusedError, PipesLambdaClient
from pipeskit.local.testing import deploy_pipes_function, zip_files
from pipeskit_lambda.protocol import ENTRYPOINT_HANDLER, HANDLER_ENV_VAR, LAMBDA_RUNTIME

from .conftest import HANDLERS_DIR, run_asset


def delivered(run, ident: str) -> None:
    assert run.result.success, run.error
    assert list(run.completed.get_custom_messages()) == [{"id": ident}]
    assert run.completed.return_value == {"id": ident}
    assert run.metadata()["id"].value == ident


def pipeskit(local_aws, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeskit", *args],
        env={**local_aws.env(), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def docs_function(local_aws, pipes_layer_arn, role_arn) -> str:
    """The Dagster docs' handler in a function created with plain create_function and the pipes layer."""
    return deploy_pipes_function(
        local_aws.client("lambda"), code=HANDLERS_DIR / "reporter.py", user_handler="reporter.lambda_handler",
        layer_arn=pipes_layer_arn, role_arn=role_arn, entrypoint=False,
    )  # fmt: skip


@pytest.mark.faults
def test_a_function_with_no_kit_code_reports_then_adopt_fixes_warm_reuse(
    local_aws, docs_function, pipes_layer_arn, make_client
) -> None:
    client, _ = make_client()
    delivered(run_asset(client, docs_function, {"id": "first"}), "first")

    second = run_asset(client, docs_function, {"id": "second"})  # the same warm environment
    assert isinstance(second.error, PipesContextReusedError)
    assert "dagster#22094" in second.error.description
    assert f"pipeskit adopt {docs_function}" in second.error.description

    dry = pipeskit(local_aws, "adopt", docs_function, "--layer", pipes_layer_arn, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"Handler: reporter.lambda_handler -> {ENTRYPOINT_HANDLER}" in dry.stdout
    assert "(dry run: nothing was changed)" in dry.stdout
    lam = local_aws.client("lambda")
    assert lam.get_function_configuration(FunctionName=docs_function)["Handler"] == "reporter.lambda_handler"

    adopted = pipeskit(local_aws, "adopt", docs_function, "--layer", pipes_layer_arn)
    assert adopted.returncode == 0, adopted.stderr
    assert f"Environment: + {HANDLER_ENV_VAR}=reporter.lambda_handler" in adopted.stdout
    assert "Layers:" not in adopted.stdout, "the layer was already attached: nothing else changes"
    config = lam.get_function_configuration(FunctionName=docs_function)
    assert config["Handler"] == ENTRYPOINT_HANDLER
    assert [layer["Arn"] for layer in config["Layers"]] == [pipes_layer_arn]
    for ident in ("warm-1", "warm-2", "warm-3"):
        delivered(run_asset(client, docs_function, {"id": ident}), ident)

    undone = pipeskit(local_aws, "adopt", docs_function, "--undo")
    assert undone.returncode == 0, undone.stderr
    config = lam.get_function_configuration(FunctionName=docs_function)
    assert config["Handler"] == "reporter.lambda_handler"
    assert HANDLER_ENV_VAR not in config.get("Environment", {}).get("Variables", {})


def test_adopt_attaches_the_layer_when_missing_and_undo_takes_only_that_off(
    local_aws, pipes_layer_arn, role_arn, make_client
) -> None:
    lam = local_aws.client("lambda")
    name = "adopt-bare-function"
    lam.create_function(
        FunctionName=name, Runtime=LAMBDA_RUNTIME, Role=role_arn, Handler="plain.handler",
        Code={"ZipFile": zip_files({"plain.py": (HANDLERS_DIR / "plain.py").read_text()})},
        Environment={"Variables": {"KEEP": "me"}},
    )  # fmt: skip
    refused = pipeskit(local_aws, "adopt", name)
    assert refused.returncode == 2 and "has no pipes layer; pass --layer ARN" in refused.stderr
    adopted = pipeskit(local_aws, "adopt", name, "--layer", pipes_layer_arn)
    assert f"Layers: + {pipes_layer_arn}" in adopted.stdout
    config = lam.get_function_configuration(FunctionName=name)
    assert config["Environment"]["Variables"]["KEEP"] == "me"
    assert pipeskit(local_aws, "adopt", name, "--undo").returncode == 0
    config = lam.get_function_configuration(FunctionName=name)
    assert config["Handler"] == "plain.handler" and not config.get("Layers")
    assert config["Environment"]["Variables"] == {"KEEP": "me"}


def test_dagster_pipes_copied_into_the_function_works_with_the_default_client(
    local_aws, role_arn, make_client, tmp_path: Path
) -> None:
    package = Path(dagster_pipes.__file__).parent
    files = {f"dagster_pipes/{p.relative_to(package)}": p.read_text() for p in package.rglob("*.py")}
    files["reporter.py"] = (HANDLERS_DIR / "reporter.py").read_text()
    name = "copied-dagster-pipes"
    local_aws.client("lambda").create_function(
        FunctionName=name, Runtime=LAMBDA_RUNTIME, Role=role_arn, Handler="reporter.lambda_handler",
        Code={"ZipFile": zip_files(files)}, Timeout=30,
    )  # fmt: skip
    client, _ = make_client()
    delivered(run_asset(client, name, {"id": "copied"}), "copied")


def test_dagster_aws_event_injector_works_with_the_kit_client(handler_function, make_client) -> None:
    function = handler_function("reporter", "lambda_handler")
    kit_client, _ = make_client()
    client = PipesLambdaClient(
        client=kit_client.lambda_client,
        context_injector=DagsterAwsEventInjector(),
        message_reader=kit_client.message_reader,
    )
    delivered(run_asset(client, function, {"id": "dagster-aws-injector"}), "dagster-aws-injector")
