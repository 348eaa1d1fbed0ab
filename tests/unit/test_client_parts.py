"""Pure pieces of the client: read budget, settings, the default boto3 client."""

import time

import pytest

from pipeskit import LambdaClientSettings, RateBudget


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
