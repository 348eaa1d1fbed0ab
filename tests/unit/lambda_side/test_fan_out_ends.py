"""A fan-out item's attempt ends with an end: its return value and last messages in one upload, a batch's
short items sharing one object, whatever became of the session (returned, raised, never opened)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from dagster_pipes import PipesMappingParamsLoader, encode_param, open_dagster_pipes

import pipeskit_lambda.channels as channels
from pipeskit.fan_out import _end_sections
from pipeskit_lambda import run_invocation
from pipeskit_lambda.protocol import (
    BUCKET_PARAM,
    CHANNEL_PARAM,
    END_SUFFIX,
    ENDS_PARAM,
    ITEM_KEY,
    KEY_PREFIX_PARAM,
    OPEN_SUFFIX,
    S3_CHANNEL,
)
from pipeskit_lambda.settings import FunctionSettings

FANOUT = "pipeskit/sessions/fanout-1"


@pytest.fixture
def s3(local_aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The local AWS's S3 as the function's environment client, with a bucket of the test's own."""
    client = local_aws.client("s3")
    client.bucket = f"fan-out-ends-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=client.bucket)
    monkeypatch.setattr(channels, "environment_s3_client", lambda: client)
    yield client


def item_event(bootstrap_event: Any, index: int, item: Any, bucket: str) -> dict[str, Any]:
    event = bootstrap_event(channel=None, **{ITEM_KEY: item})
    event["DAGSTER_PIPES_MESSAGES"] = encode_param({
        BUCKET_PARAM: bucket, KEY_PREFIX_PARAM: f"{FANOUT}/{index}", CHANNEL_PARAM: S3_CHANNEL,
        ENDS_PARAM: f"{FANOUT}/ends/{index}",
    })  # fmt: skip
    return event


def sqs_batch(*events: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m{i}", "eventSource": "aws:sqs", "body": json.dumps(event)}
                        for i, event in enumerate(events)]}  # fmt: skip


def keys(s3: Any, prefix: str = FANOUT) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=s3.bucket, Prefix=prefix + "/").get("Contents", [])]


def ends(s3: Any) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Every end in the ends folder: ``{index.attempt: (header, messages)}``."""
    found = {}
    for key in keys(s3, f"{FANOUT}/ends"):
        if key.endswith(END_SUFFIX):
            body = s3.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
            for name, header, lines in _end_sections(body):
                found[name] = (header, [json.loads(line) for line in lines.splitlines() if line.strip()])
    return found


def handler(event: dict[str, Any], _context: Any) -> Any:
    item = event[ITEM_KEY]
    if item == "unopened":
        return {"ignored": True}
    if item == "raise-first":
        raise KeyError("no such order")
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        pipes.log.info(f"item {item}")
        if item == "bad":
            raise ValueError("bad item")
        if item == "long":
            for n in range(40):
                pipes.log.info("x" * 100 + str(n))
            time.sleep(1.0)  # works on: what waits goes up as a chunk meanwhile
        pipes.report_asset_materialization(metadata={"item": item})
    return {"done": item}


def test_a_batch_of_short_items_ends_in_one_object_each_item_its_own_section(
    s3, bootstrap_event, lambda_context
) -> None:
    answer = run_invocation(handler, sqs_batch(*(item_event(bootstrap_event, n, item, s3.bucket) for n, item in
                                                  enumerate(["a", "bad", "c"]))), lambda_context)  # fmt: skip
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert len([k for k in keys(s3) if k.endswith(END_SUFFIX)]) == 1, "one upload for the batch's ends"
    assert not [k for k in keys(s3) if not k.endswith(END_SUFFIX)], "no chunk, no result object, no open marker"
    found = {name.split(".")[0]: value for name, value in ends(s3).items()}
    header, messages = found["0"]
    assert header["result"] == {"done": "a"} and header["opened"] and header["chunks"] == 0
    assert header["request_id"] == "req-1" and header["log_group_name"] == "/aws/lambda/fn"
    assert [m["method"] for m in messages] == ["opened", "log", "report_asset_materialization", "closed"]
    bad_header, bad_messages = found["1"]
    assert "result" not in bad_header
    assert bad_messages[-1]["params"]["exception"]["name"] == "ValueError"
    assert found["2"][0]["result"] == {"done": "c"}


def test_an_item_whose_handler_never_opens_pipes_still_ends_and_says_so(s3, bootstrap_event, lambda_context) -> None:
    batch = sqs_batch(item_event(bootstrap_event, 0, "unopened", s3.bucket),
                      item_event(bootstrap_event, 1, "raise-first", s3.bucket))  # fmt: skip
    answer = run_invocation(handler, batch, lambda_context)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    found = {name.split(".")[0]: value for name, value in ends(s3).items()}
    assert found["0"][0]["opened"] is False and found["0"][0]["result"] == {"ignored": True}
    assert found["0"][1] == []
    assert found["1"][0]["opened"] is False
    assert found["1"][0]["error"] == {"name": "KeyError", "message": "'no such order'"}


def test_a_long_item_announces_itself_and_its_chunks_precede_its_end(
    s3, bootstrap_event, lambda_context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FunctionSettings.env_var("s3_chunk_bytes"), "1024")
    monkeypatch.setenv(FunctionSettings.env_var("s3_flush_interval_s"), "0.1")
    run_invocation(handler, item_event(bootstrap_event, 7, "long", s3.bucket), lambda_context)  # invoked: no batch
    [open_key] = [k for k in keys(s3) if k.endswith(OPEN_SUFFIX)]
    assert open_key.startswith(f"{FANOUT}/ends/7.attempt-")
    attempt = open_key.removeprefix(f"{FANOUT}/ends/7.").removesuffix(OPEN_SUFFIX)
    [(name, (header, messages))] = ends(s3).items()
    assert name == f"7.{attempt}"
    chunks = sorted(k for k in keys(s3, f"{FANOUT}/7/{attempt}"))
    assert header["chunks"] == len(chunks) >= 1
    assert f"{FANOUT}/ends/7.{attempt}{END_SUFFIX}" in keys(s3), "an invoked item's end is named after its attempt"
    lines = [json.loads(line) for key in chunks
             for line in s3.get_object(Bucket=s3.bucket, Key=key)["Body"].read().decode().splitlines()]  # fmt: skip
    every = [m["method"] for m in lines + messages]
    assert every[0] == "opened" and every[-1] == "closed" and every.count("log") == 41, "each message once, in order"


def test_ends_that_cannot_be_uploaded_fail_their_items_for_sqs_to_deliver_again(
    s3, bootstrap_event, lambda_context
) -> None:
    batch = sqs_batch(item_event(bootstrap_event, 0, "a", bucket="no-such-bucket"),
                      item_event(bootstrap_event, 1, "c", s3.bucket))  # fmt: skip
    answer = run_invocation(handler, batch, lambda_context)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}]}, "its batch-mate's end went up"
    assert [name.split(".")[0] for name in ends(s3)] == ["1"]
