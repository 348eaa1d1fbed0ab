"""Any Pipes handler consumes the work queue: each SQS record of fan-out items is its own session."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes

from pipeskit_lambda import pipes_handler, run_invocation
from pipeskit_lambda.errors import HandlerConfigurationError
from pipeskit_lambda.protocol import ITEM_KEY

seen: list[Any] = []


def docs_style(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    """An ordinary docs-style Pipes handler, exactly what works with run()."""
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        seen.append((event[ITEM_KEY], pipes.extras["rows"]))
        if event[ITEM_KEY] == "bad":
            raise ValueError("bad item")
        pipes.report_custom_message({"item": event[ITEM_KEY]})
    return {"done": event[ITEM_KEY]}


def sqs_event(*bodies: Any) -> dict[str, Any]:
    return {"Records": [
        {"messageId": f"m{i}", "eventSource": "aws:sqs", "body": body if isinstance(body, str) else json.dumps(body)}
        for i, body in enumerate(bodies)
    ]}  # fmt: skip


def test_each_record_runs_as_its_own_session_and_failures_are_reported_per_record(
    bootstrap_event, lambda_context
) -> None:
    seen.clear()
    event = sqs_event(*(bootstrap_event(**{ITEM_KEY: item}) for item in ("a", "bad", "c")))
    assert run_invocation(docs_style, event, lambda_context) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert seen == [("a", 3), ("bad", 3), ("c", 3)], "each item with its own context, in order"


def test_a_pipes_handler_consumes_the_queue_too(bootstrap_event, lambda_context) -> None:
    @pipes_handler
    def handler(event: dict[str, Any], context: Any, pipes: Any) -> str:
        pipes.log.info(f"item {event[ITEM_KEY]}")
        return "ok"

    assert handler(sqs_event(bootstrap_event(**{ITEM_KEY: 1})), lambda_context) == {"batchItemFailures": []}


def test_an_sqs_event_without_work_items_is_refused_saying_what_it_got(bootstrap_event, lambda_context) -> None:
    event = sqs_event(bootstrap_event(**{ITEM_KEY: "a"}), {"order": 42})
    with pytest.raises(HandlerConfigurationError, match=r"record 'm1' is not a fan-out work item.*\{\"order\": 42\}"):
        run_invocation(docs_style, event, lambda_context)


def test_other_events_with_records_reach_the_handler_as_they_are(lambda_context) -> None:
    s3_notification = {"Records": [{"eventSource": "aws:s3", "s3": {"object": {"key": "k"}}}]}
    assert run_invocation(lambda event, context: event, s3_notification, lambda_context) == s3_notification
