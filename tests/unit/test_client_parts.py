"""Pure pieces of the client: read budget, settings, the default boto3 client."""

import time

import pytest

from pipeskit import LambdaClientSettings, RateBudget, SettingsError


def test_rate_budget_spaces_calls_beyond_its_burst() -> None:
    budget = RateBudget(rate=20, burst=1)
    started = time.monotonic()
    for _ in range(5):
        budget.acquire()
    assert time.monotonic() - started >= 4 / 20 * 0.95
    with pytest.raises(ValueError):
        RateBudget(rate=0)


def test_client_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPESKIT_READ_TIMEOUT_S", "1000")
    monkeypatch.setenv("PIPESKIT_THROTTLE_MAX_ATTEMPTS", "3")
    settings = LambdaClientSettings.from_env(max_pool_connections=4)
    assert (settings.read_timeout_s, settings.throttle_max_attempts, settings.max_pool_connections) == (1000.0, 3, 4)
    assert LambdaClientSettings().read_timeout_s > 900, "above Lambda's maximum function timeout"


def test_default_lambda_client_never_cuts_or_repeats_an_invoke(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeskit.client import default_lambda_client

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config = default_lambda_client(LambdaClientSettings(max_pool_connections=64)).meta.config
    assert config.read_timeout == 960.0
    assert config.retries["total_max_attempts"] == 1
    assert config.max_pool_connections == 64


def test_a_client_resolves_config_over_settings_objects_over_the_environment() -> None:
    from pipeskit.settings import ClientSettings, DeploymentSettings, LambdaClientSettings

    environ = {"PIPESKIT_MESSAGES_BUCKET": "env-bucket", "PIPESKIT_THROTTLE_MAX_ATTEMPTS": "3",
               "PIPESKIT_CONTEXT_BUCKET": "env-context", "PIPESKIT_READ_TIMEOUT_S": "100"}  # fmt: skip
    resolved = ClientSettings.resolve(
        given={"invoke": LambdaClientSettings(throttle_max_attempts=5, connect_timeout_s=2.0)},
        config={"throttle_max_attempts": 7, "messages_bucket": None, "context_bucket": "config-context"},
        environ=environ,
    )
    assert resolved.invoke.throttle_max_attempts == 7, "a config value wins over the object given"
    assert resolved.invoke.connect_timeout_s == 2.0, "the object given is used as it is"
    assert resolved.invoke.read_timeout_s == LambdaClientSettings().read_timeout_s, "an object given reads no env"
    assert resolved.deployment == DeploymentSettings(messages_bucket="env-bucket", context_bucket="config-context")


def test_every_config_field_of_the_client_is_a_setting_or_says_where_clients_point() -> None:
    import dataclasses

    from pipeskit import PipesLambdaClient
    from pipeskit.client import _AWS_FIELDS
    from pipeskit.settings import ClientSettings

    parts = [part.default_factory for part in dataclasses.fields(ClientSettings)]
    settings_fields = {field.name for part in parts for field in dataclasses.fields(part)}  # type: ignore[arg-type]
    config_fields = set(PipesLambdaClient.model_fields) - set(_AWS_FIELDS) - {"channel"}
    assert config_fields <= settings_fields, f"config fields no settings part takes: {config_fields - settings_fields}"


def test_a_settings_value_from_config_is_still_validated() -> None:
    from pipeskit.settings import ClientSettings

    with pytest.raises(SettingsError, match="PIPESKIT_THROTTLE_MAX_ATTEMPTS=0"):
        ClientSettings.resolve(config={"throttle_max_attempts": 0}, environ={})


def test_the_logs_client_makes_as_many_attempts_as_the_setting_says() -> None:
    """``PIPESKIT_LOGS_MAX_ATTEMPTS`` counts attempts, the first included (botocore's ``max_attempts``
    would count retries: one more)."""
    from pipeskit._boto import AwsTarget
    from pipeskit.cloudwatch_logs import default_logs_client
    from pipeskit.settings import LogsReaderSettings

    client = default_logs_client(LogsReaderSettings(logs_max_attempts=4), AwsTarget(region_name="us-east-1"))
    assert client.meta.config.retries["total_max_attempts"] == 4
