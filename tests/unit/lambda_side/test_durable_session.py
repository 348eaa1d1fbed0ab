"""A durable execution is one Pipes session, run by the durable SDK's own in-process test runner (its
replays, waits skipped on its clock, step retries), its chunks written to the local AWS's S3 and read back
by the orchestrator's chunk reader."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from dagster_pipes import (
    DAGSTER_PIPES_MESSAGES_ENV_VAR,
    PipesContext,
    PipesMappingParamsLoader,
    encode_param,
    open_dagster_pipes,
)

from pipeskit.channels.chunks import ChunkReader
from pipeskit_lambda import pipes_handler, run_invocation
from pipeskit_lambda.channels import environment_s3_client
from pipeskit_lambda.errors import HandlerConfigurationError
from pipeskit_lambda.protocol import ATTEMPT_PREFIX, BUCKET_PARAM, KEY_PREFIX_PARAM, S3_CHANNEL

from .durable_handlers import EXPECTED_LOGS, NESTED_LOGS, failing, nested, run_durably, three_steps

BUCKET = "durable-messages"
PREFIX = "pipeskit/sessions/run-1"


@pytest.fixture
def s3(local_aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The messages bucket, empty; the function side's S3 client points at the local AWS too."""
    for name, value in local_aws.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PIPESKIT_S3_FLUSH_INTERVAL_S", "0.05")
    environment_s3_client.cache_clear()
    client = local_aws.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    if keys:
        client.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": key} for key in keys]})
    client.delete_bucket(Bucket=BUCKET)
    environment_s3_client.cache_clear()


def s3_input(bootstrap_event: Any, **event: Any) -> str:
    """The execution's input: the bootstrap naming the S3 channel, as the client sends it."""
    made = bootstrap_event(S3_CHANNEL, **event)
    params = {"stdio": "stderr", "pipeskit_channel": S3_CHANNEL, BUCKET_PARAM: BUCKET, KEY_PREFIX_PARAM: PREFIX}
    made[DAGSTER_PIPES_MESSAGES_ENV_VAR] = encode_param(params)
    return json.dumps(made)


def read_session(client: Any) -> tuple[list[dict[str, Any]], ChunkReader]:
    """Every message of the session, as the orchestrator's reader delivers them."""
    messages: list[dict[str, Any]] = []
    reader = ChunkReader(client, BUCKET, PREFIX, messages.append, gap_timeout_s=0)
    reader.poll()
    return messages, reader


def methods(messages: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["method"] == name]


def test_a_durable_execution_of_three_steps_and_two_waits_is_one_session(s3, bootstrap_event) -> None:
    result = run_durably(three_steps, s3_input(bootstrap_event))

    assert result.status.value == "SUCCEEDED", result.error
    assert json.loads(result.result) == {"rows": 1200, "passed": True}
    messages, reader = read_session(s3)
    assert len(methods(messages, "opened")) == 1
    assert messages[0]["method"] == "opened"
    assert messages[-1] == {**messages[-1], "method": "closed", "params": {}}
    assert len(methods(messages, "closed")) == 1
    logs = [m["params"]["message"] for m in methods(messages, "log")]
    assert logs == EXPECTED_LOGS  # each once, in the order reported, across the invocations
    materializations = methods(messages, "report_asset_materialization")
    assert [m["params"]["metadata"]["rows"]["raw_value"] for m in materializations] == [600]
    assert [m["params"]["passed"] for m in methods(messages, "report_asset_check")] == [True]
    # one attempt folder per invocation (the first and one after each wait), named in the order they ran
    folders = list(reader.attempts)
    assert len(folders) == 3 and all(f.startswith(ATTEMPT_PREFIX) for f in folders)
    assert folders == sorted(folders)


def test_messages_from_child_contexts_map_items_and_parallel_branches_past_their_waits_are_sent_once(
    s3, bootstrap_event
) -> None:
    result = run_durably(nested, s3_input(bootstrap_event))

    assert result.status.value == "SUCCEEDED", result.error
    messages, reader = read_session(s3)
    logs = [m["params"]["message"] for m in methods(messages, "log")]
    # each once: none lost while the root still replays the operation holding them, none sent again
    assert sorted(logs) == sorted(NESTED_LOGS) and len(logs) == len(set(logs))
    for begins, ends in [("root begins", "root after the child"), ("child begins", "grandchild after its wait"),
                         ("step in the child", "child ends"), ("root after the items", "branch a begins")]:
        assert logs.index(begins) < logs.index(ends)
    for value in (1, 2, 3):
        assert logs.index("root after the child") < logs.index(f"item {value} begins")
        begins, ends = logs.index(f"item {value} begins"), logs.index(f"item {value} ends")
        assert begins < ends < logs.index("root after the items")
    assert logs[-1] == "root ends" and [m["method"] for m in messages][-1] == "closed"
    assert len(reader.attempts) > 3  # the waits did suspend the execution: this was replayed


def test_a_step_that_fails_after_its_retries_closes_the_session_with_its_error(s3, bootstrap_event) -> None:
    result = run_durably(failing, s3_input(bootstrap_event))

    assert result.status.value == "FAILED"
    messages, _ = read_session(s3)
    assert len(methods(messages, "opened")) == 1
    closed = methods(messages, "closed")
    assert len(closed) == 1 and messages[-1] is closed[0]
    exception = closed[0]["params"]["exception"]
    assert "the source refused the query" in json.dumps(exception)
    logs = [m["params"]["message"] for m in methods(messages, "log")]
    assert logs.count("before the flaky step") == 1  # replayed before each retry, written once
    assert [line for line in logs if line.startswith("attempt")] == ["attempt 1", "attempt 2", "attempt 3"]


def test_pipes_handler_above_durable_execution_is_refused_naming_the_order(bootstrap_event, lambda_context) -> None:
    @pipes_handler
    @durable_execution
    def wrong(event: dict[str, Any], context: DurableContext) -> None:
        raise AssertionError("never runs")

    durable_event = {"DurableExecutionArn": "arn:aws:lambda:us-east-1:1:function:f/durable-execution/x/y",
                     "CheckpointToken": "token", "InitialExecutionState": {"Operations": []}}  # fmt: skip
    with pytest.raises(HandlerConfigurationError, match="Put @durable_execution above @pipes_handler"):
        wrong(durable_event, lambda_context)


@durable_execution
@pipes_handler
def on_the_response_channel(event: dict[str, Any], context: DurableContext, pipes: PipesContext) -> int:
    return 1


def test_a_durable_execution_on_another_channel_fails_naming_the_s3_channel(bootstrap_event) -> None:
    result = run_durably(on_the_response_channel, bootstrap_event())

    assert result.status.value == "FAILED"
    assert "over the S3 channel only" in result.error.message


@durable_execution
def bare(event: dict[str, Any], context: DurableContext) -> int:
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        pipes.log.info("never sent")
    return 1


@durable_execution
@pipes_handler
def decorated_and_docs_style(event: dict[str, Any], context: DurableContext, pipes: PipesContext) -> int:
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as same:  # the execution's session
        same.log.info("from open_dagster_pipes")
    return 2


def test_behind_the_entrypoint_open_dagster_pipes_alone_is_refused_saying_how_to_decorate(
    s3, bootstrap_event
) -> None:
    result = run_durably(lambda event, context: run_invocation(bare, event, context), s3_input(bootstrap_event))

    assert result.status.value == "FAILED"
    assert "@durable_execution above @pipes_handler" in result.error.message
    assert read_session(s3)[0] == []  # nothing was sent


def test_open_dagster_pipes_inside_a_decorated_durable_handler_is_the_executions_session(
    s3, bootstrap_event
) -> None:
    result = run_durably(
        lambda event, context: run_invocation(decorated_and_docs_style, event, context), s3_input(bootstrap_event)
    )

    assert result.status.value == "SUCCEEDED", result.error
    messages, _ = read_session(s3)
    assert [m["method"] for m in messages] == ["opened", "log", "closed"]
