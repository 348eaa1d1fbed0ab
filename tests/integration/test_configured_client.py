"""The client as a configurable Dagster resource: AWS target, timeouts, channel and buckets as run config."""

from typing import Any

import pytest
from dagster import AssetExecutionContext, DagsterInstance, Definitions, asset, materialize

from pipeskit import (
    CloudWatchLogsMessageReader,
    InvokeThrottledError,
    LambdaClientSettings,
    LambdaFunctionError,
    PipesLambdaClient,
    ResponsePayloadMessageReader,
    S3MessageReader,
    UnsupportedComponentError,
)

CONFIG_FIELDS = {
    "region_name", "endpoint_url", "profile_name", "read_timeout_s", "connect_timeout_s", "throttle_max_attempts",
    "channel", "messages_bucket", "context_bucket", "work_queue_url", "dead_letter_queue_url", "failure_queue_url",
    "stack_name",
}  # fmt: skip


def materialize_with(client: PipesLambdaClient, function_name: str, config: dict[str, Any] | None) -> dict[str, Any]:
    """Run one asset through ``client`` with ``config`` as the resource's run config; what it saw.

    As for any Dagster resource (dagster-aws's ``S3Resource`` too), run config replaces the values
    given to the constructor: those are the configuration when the run gives none.
    """
    seen: dict[str, Any] = {}

    @asset
    def configured(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
        seen["reader"] = lambda_pipes.message_reader
        seen["lambda_client"] = lambda_pipes.lambda_client
        try:
            completed = lambda_pipes.run(context=context, function_name=function_name, event={"id": "configured"})
        except Exception as error:
            seen["error"] = error
            raise
        seen["messages"] = list(completed.get_custom_messages())
        yield from completed.get_results()

    result = materialize(
        [configured], resources={"lambda_pipes": client}, instance=DagsterInstance.ephemeral(), raise_on_error=False,
        run_config={"resources": {"lambda_pipes": {"config": config}}} if config is not None else None,
    )  # fmt: skip
    seen["success"] = result.success
    return seen


@pytest.fixture
def no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Credentials only: no endpoint, region or profile from the environment."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")  # not the local AWS's region
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


def test_the_resource_declares_its_configuration_for_the_launchpad() -> None:
    @asset
    def uses(lambda_pipes: PipesLambdaClient) -> None: ...

    definitions = Definitions(assets=[uses], resources={"lambda_pipes": PipesLambdaClient(channel="logs")})
    resource = definitions.get_repository_def().get_top_level_resources()["lambda_pipes"]
    fields = resource.config_schema.config_type.fields
    assert set(fields) == CONFIG_FIELDS
    assert all(field.description for field in fields.values())
    assert not any(field.is_required for field in fields.values()), "every setting has a default"


@pytest.mark.usefixtures("no_aws_environment")
def test_endpoint_and_region_from_run_config_reach_the_local_aws(local_aws, handler_function) -> None:
    function = handler_function("reporter", "lambda_handler")
    seen = materialize_with(PipesLambdaClient(), function, {
        "endpoint_url": local_aws.endpoint_url, "region_name": local_aws.settings.region,
    })  # fmt: skip
    assert seen["success"], seen.get("error")
    assert seen["messages"] == [{"id": "configured"}]
    assert seen["lambda_client"].meta.region_name == local_aws.settings.region
    assert isinstance(seen["reader"], ResponsePayloadMessageReader)


@pytest.mark.usefixtures("no_aws_environment")
def test_the_configured_channel_builds_its_reader_in_the_configured_session(local_aws, handler_function) -> None:
    function = handler_function("reporter", "lambda_handler")
    client = PipesLambdaClient(endpoint_url=local_aws.endpoint_url, region_name=local_aws.settings.region)
    seen = materialize_with(client, function, None)  # the constructor's keywords are the configuration
    assert seen["success"], seen.get("error")
    assert isinstance(seen["reader"], ResponsePayloadMessageReader)
    seen = materialize_with(client, function, {  # the launchpad spells enum values by name
        "channel": "LOGS", "endpoint_url": local_aws.endpoint_url, "region_name": local_aws.settings.region,
    })  # fmt: skip
    assert seen["success"], seen.get("error")
    assert isinstance(seen["reader"], CloudWatchLogsMessageReader)
    # read from the local AWS's CloudWatch Logs: the environment names no endpoint
    assert seen["messages"] == [{"id": "configured"}]


def test_run_config_wins_over_a_settings_object(local_aws, handler_function) -> None:
    lam = local_aws.client("lambda", retries=0)
    client = PipesLambdaClient(lam, settings=LambdaClientSettings(throttle_max_attempts=9, throttle_base_delay_s=0))
    with local_aws.override(invoke_throttle_rate=1.0):
        seen = materialize_with(client, handler_function("reporter", "lambda_handler"), {"throttle_max_attempts": 2})
    assert isinstance(seen["error"], InvokeThrottledError)
    assert "on all 2 attempts" in str(seen["error"])


def test_a_profile_gives_its_region_and_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / "config").write_text("[profile kit]\nregion = ap-southeast-2\n")
    (tmp_path / "credentials").write_text("[kit]\naws_access_key_id = AKIDKIT\naws_secret_access_key = secret\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    client = PipesLambdaClient(profile_name="kit").lambda_client
    assert client.meta.region_name == "ap-southeast-2"
    assert client._request_signer._credentials.access_key == "AKIDKIT"


def test_the_s3_channel_takes_the_configured_bucket() -> None:
    reader = PipesLambdaClient(channel="s3", messages_bucket="my-messages", region_name="us-east-1").message_reader
    assert isinstance(reader, S3MessageReader) and reader.bucket == "my-messages"


def test_a_reader_and_a_channel_together_are_refused_naming_both() -> None:
    with pytest.raises(UnsupportedComponentError, match=r"message_reader=CloudWatchLogsMessageReader.*channel=S3"):
        PipesLambdaClient(message_reader=CloudWatchLogsMessageReader(), channel="s3")


def test_an_unknown_channel_names_the_choices() -> None:
    with pytest.raises(Exception, match=r"'response', 'logs' or 's3'"):
        PipesLambdaClient(channel="sqs")


def test_the_constructor_stays_positional_like_dagster_aws(local_aws, handler_function) -> None:
    lam = local_aws.client("lambda", retries=0)
    client = PipesLambdaClient(lam, None, ResponsePayloadMessageReader())
    seen = materialize_with(client, handler_function("reporter", "lambda_handler"), {"read_timeout_s": 120})
    assert seen["success"], seen.get("error")
    assert seen["lambda_client"] is lam, "a client given to the constructor is kept across run config"


@pytest.mark.faults
@pytest.mark.usefixtures("no_aws_environment")
@pytest.mark.parametrize("channel", ["RESPONSE", "LOGS"])
def test_a_failing_function_is_read_back_through_the_configured_session(channel, local_aws, handler_function) -> None:
    """The read-back after a failure (log group lookup, log reads) uses the configured endpoint too."""
    function = handler_function("dying", "lambda_handler")
    failed: dict[str, Any] = {}

    @asset
    def dies(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
        try:
            lambda_pipes.run(context=context, function_name=function, event={"messages": 20, "mode": "raise"})
        except Exception as error:
            failed["error"] = error
            raise

    instance = DagsterInstance.ephemeral()
    config = {"endpoint_url": local_aws.endpoint_url, "region_name": local_aws.settings.region, "channel": channel}
    result = materialize([dies], resources={"lambda_pipes": PipesLambdaClient()}, instance=instance,
                         raise_on_error=False, run_config={"resources": {"lambda_pipes": {"config": config}}})
    assert not result.success
    error = failed["error"]
    assert isinstance(error, LambdaFunctionError) and error.error_type == "ValueError", error
    assert error.read_error is None, error.read_error
    logged = {r.user_message for r in instance.all_logs(result.run_id)}
    assert {f"message {i:03d}" for i in range(20)} <= logged, "every message reported before the error arrived"
