"""Fault injection: off by default, switched on per test with ``local_aws.override``."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from pipeskit.local.settings import LocalAWSSettings
from tests.local_aws.conftest import unique, wait_until

pytestmark = pytest.mark.faults


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


def test_new_settings_from_the_environment_and_the_command_line():
    import argparse

    from pipeskit.local.cli import configure_parser, settings_from_args

    settings = LocalAWSSettings.from_env(
        {
            "PIPESKIT_LOCAL_LOG_STREAM_DELAY_S": "2.5",
            "PIPESKIT_LOCAL_S3_SLOW_DOWN_RATE": "0.1",
            "PIPESKIT_LOCAL_S3_SLOW_DOWN_PER_KEY": "2",
        }
    )
    assert (settings.log_stream_delay_s, settings.s3_slow_down_rate, settings.s3_slow_down_per_key) == (2.5, 0.1, 2)
    assert (LocalAWSSettings().log_stream_delay_s, LocalAWSSettings().s3_slow_down_rate) == (0, 0)
    with pytest.raises(ValueError):
        LocalAWSSettings.from_env({"PIPESKIT_LOCAL_S3_SLOW_DOWN_RATE": "1.5"})
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    args = parser.parse_args(["--log-stream-delay", "4", "--s3-slow-down-rate", "0.5", "--s3-slow-down-per-key", "3"])
    settings = settings_from_args(args)
    assert (settings.log_stream_delay_s, settings.s3_slow_down_rate, settings.s3_slow_down_per_key) == (4.0, 0.5, 3)


def test_log_stream_delay(local_aws, lam, deploy, logs):
    """A new environment's stream appears late, with every line in order; later lines of it at once."""
    name = deploy("def handler(event, context):\n    print('line', event['i'])\n")
    group = f"/aws/lambda/{name}"
    with local_aws.override(log_stream_delay_s=3.0):  # wide enough for a loaded 2-core host
        first = lam.invoke(FunctionName=name, Payload='{"i": 1}')["ResponseMetadata"]["RequestId"]
        assert logs.describe_log_streams(logGroupName=group)["logStreams"] == [], "the group is there, the stream not"
        assert logs.filter_log_events(logGroupName=group)["events"] == []
        [stream] = wait_until(lambda: logs.describe_log_streams(logGroupName=group)["logStreams"], timeout=10)
        second = lam.invoke(FunctionName=name, Payload='{"i": 2}')["ResponseMetadata"]["RequestId"]
        # the stream exists now: the warm environment's next lines are readable as soon as it answered
        events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True)
    messages = [e["message"] for e in events["events"]]
    assert messages[0].startswith("INIT_START")
    for i, request_id in ((1, first), (2, second)):
        start = messages.index(f"START RequestId: {request_id} Version: $LATEST")
        assert messages[start + 1 : start + 3] == [f"line {i}", f"END RequestId: {request_id}"]
    assert messages.index(f"END RequestId: {first}") < messages.index(f"START RequestId: {second} Version: $LATEST")


def test_log_stream_delay_holds_back_only_new_streams(local_aws, lam, deploy, logs):
    warm = deploy("def handler(event, context):\n    print('warm line')\n")
    lam.invoke(FunctionName=warm)  # its stream exists before the fault is switched on
    cold = deploy("def handler(event, context):\n    print('cold line')\n")
    with local_aws.override(log_stream_delay_s=3.0):
        lam.invoke(FunctionName=cold)
        lam.invoke(FunctionName=warm)
        warm_lines = [e["message"] for e in logs.filter_log_events(logGroupName=f"/aws/lambda/{warm}")["events"]]
        assert warm_lines.count("warm line") == 2, "a stream that exists is not held back"
        assert logs.filter_log_events(logGroupName=f"/aws/lambda/{cold}")["events"] == []


def _s3_error(call) -> tuple[str, int]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_s3_slow_down_per_key(local_aws):
    s3 = local_aws.client("s3", retries=0)
    bucket = unique("slow")
    s3.create_bucket(Bucket=bucket)
    before = sum(local_aws.faults.s3_slow_downs.values())
    with local_aws.override(s3_slow_down_per_key=2):
        for _ in range(2):
            assert _s3_error(lambda: s3.put_object(Bucket=bucket, Key="a/1.json", Body=b"one")) == ("SlowDown", 503)
        s3.put_object(Bucket=bucket, Key="a/1.json", Body=b"one")  # the third attempt is served
        assert _s3_error(lambda: s3.put_object(Bucket=bucket, Key="a/2.json", Body=b"two"))[0] == "SlowDown"
        assert _s3_error(lambda: s3.head_object(Bucket=bucket, Key="a/1.json")) == ("503", 503)  # HEAD: no body
        assert _s3_error(lambda: s3.list_objects_v2(Bucket=bucket, Prefix="a/"))[0] == "SlowDown"
        retrying = local_aws.client("s3", retries=4)  # botocore's retries ride it out
        assert retrying.get_object(Bucket=bucket, Key="a/1.json")["Body"].read() == b"one"
        assert [o["Key"] for o in retrying.list_objects_v2(Bucket=bucket, Prefix="a/")["Contents"]] == ["a/1.json"]
    assert sum(local_aws.faults.s3_slow_downs.values()) - before == 2 + 1 + 1 + 1 + 2 + 1
    assert s3.get_object(Bucket=bucket, Key="a/1.json")["Body"].read() == b"one"


def test_s3_slow_down_rate(local_aws):
    s3 = local_aws.client("s3", retries=0)
    bucket = unique("slow")
    s3.create_bucket(Bucket=bucket)
    with local_aws.override(s3_slow_down_rate=1.0):
        assert _s3_error(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"v")) == ("SlowDown", 503)
        assert _s3_error(lambda: s3.list_objects_v2(Bucket=bucket))[0] == "SlowDown"
        local_aws.client("sqs", retries=0).list_queues()  # other services are not slowed down
        local_aws.client("logs", retries=0).describe_log_groups()
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
