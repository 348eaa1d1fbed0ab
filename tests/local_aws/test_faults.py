"""Fault injection: off by default, switched on per test with ``local_aws.override``."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from pipeskit.local.settings import LocalAWSSettings
from tests.local_aws.conftest import unique, wait_until


def test_settings_defaults_and_env_overrides():
    defaults = LocalAWSSettings()
    assert defaults.logs_read_tps == 0
    assert defaults.log_ingestion_delay_s == 0
    assert defaults.invoke_throttle_rate == 0
    settings = LocalAWSSettings.from_env(
        {
            "PIPESKIT_LOCAL_LOGS_READ_TPS": "5",
            "PIPESKIT_LOCAL_LOG_INGESTION_DELAY_S": "1.5",
            "PIPESKIT_LOCAL_INVOKE_THROTTLE_RATE": "0.25",
            "PIPESKIT_LOCAL_PORT": "4570",
            "PIPESKIT_LOCAL_ASYNC_RETRY_DELAYS_S": "0.1,0.2",
            "PIPESKIT_LOCAL_QUIET": "false",
        }
    )
    assert settings.logs_read_tps == 5.0
    assert settings.log_ingestion_delay_s == 1.5
    assert settings.invoke_throttle_rate == 0.25
    assert settings.port == 4570
    assert settings.async_retry_delays_s == (0.1, 0.2)
    assert settings.quiet is False
    with pytest.raises(ValueError):
        LocalAWSSettings.from_env({"PIPESKIT_LOCAL_PORT": "nope"})


def test_logs_read_throttling(local_aws):
    logs = local_aws.client("logs", retries=0)
    group = unique("/throttle")
    logs.create_log_group(logGroupName=group)
    with local_aws.override(logs_read_tps=2):
        time.sleep(1.0)  # start with an empty one-second window
        codes = []
        for _ in range(5):
            try:
                logs.describe_log_streams(logGroupName=group)
                codes.append("ok")
            except ClientError as error:
                codes.append(error.response["Error"]["Code"])
        assert codes[:2] == ["ok", "ok"]
        assert set(codes[2:]) == {"ThrottlingException"}
        with pytest.raises(ClientError) as raised:
            logs.filter_log_events(logGroupName=group)
        assert raised.value.response["Error"]["Code"] == "ThrottlingException"
        # writes are not throttled
        logs.create_log_stream(logGroupName=group, logStreamName="s")
    logs.describe_log_streams(logGroupName=group)


def test_log_ingestion_delay(local_aws, lam, deploy, logs):
    name = deploy("def handler(event, context):\n    print('late line')\n")
    group = f"/aws/lambda/{name}"
    with local_aws.override(log_ingestion_delay_s=3.0):  # wide enough for a loaded 2-core host
        lam.invoke(FunctionName=name)
        invoked = time.monotonic()
        with pytest.raises(logs.exceptions.ResourceNotFoundException):
            logs.filter_log_events(logGroupName=group)

        def visible():
            try:
                events = logs.filter_log_events(logGroupName=group)["events"]
            except logs.exceptions.ResourceNotFoundException:
                return None
            return "late line" in [e["message"] for e in events]

        wait_until(visible, timeout=10)
        assert time.monotonic() - invoked >= 2.5


def test_invoke_throttling(local_aws, lam, deploy):
    name = deploy("def handler(event, context):\n    return 1\n")
    with local_aws.override(invoke_throttle_rate=1.0):
        with pytest.raises(lam.exceptions.TooManyRequestsException) as raised:
            lam.invoke(FunctionName=name)
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert lam.invoke(FunctionName=name)["StatusCode"] == 200
