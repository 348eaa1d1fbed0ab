"""Bad input is refused before anything is invoked, naming the offending value and what to do."""

import datetime as dt
import decimal
import json

import pytest
from dagster import build_asset_context
from dagster_aws.pipes import PipesLambdaEventContextInjector, PipesLambdaLogsMessageReader, PipesS3ContextInjector

from pipeskit import InvalidEventError, PayloadTooLargeError, PipesLambdaClient, UnsupportedComponentError
from pipeskit.payload import build_payload, check_event, check_json

BOOTSTRAP = {"DAGSTER_PIPES_CONTEXT": "ctx", "DAGSTER_PIPES_MESSAGES": "msg"}


def test_the_payload_is_the_event_with_the_bootstrap() -> None:
    payload = build_payload({"rows": [1, 2.5, None, True, {"a": "b"}]}, BOOTSTRAP, "fn", 6 * 1024 * 1024)
    assert json.loads(payload) == {"rows": [1, 2.5, None, True, {"a": "b"}], **BOOTSTRAP}


@pytest.mark.parametrize(
    "event, message",
    [
        ([1, 2], "the event for fn is a list; .* must be a mapping"),
        ("text", "the event for fn is a str"),
        ({"when": dt.date(2026, 11, 21)}, r"event\['when'\] is a datetime.date, which JSON cannot carry"),
        ({"rows": [1, {"amount": decimal.Decimal("1.5")}]}, r"event\['rows'\]\[1\]\['amount'\] is a decimal.Decimal"),
        ({"ratio": float("nan")}, r"event\['ratio'\] is nan, which JSON has no number for"),
        ({"big": float("inf")}, r"event\['big'\] is inf"),
        ({1: "int key"}, r"event\[1\] is a key of type int"),
        ({"blob": b"bytes"}, r"event\['blob'\] is a builtins.bytes"),
        ({"DAGSTER_PIPES_CONTEXT": "mine"}, "uses DAGSTER_PIPES_CONTEXT, the key.* of the Pipes bootstrap"),
    ],
)
def test_an_event_that_cannot_work_is_refused_with_its_path(event, message: str) -> None:
    with pytest.raises(InvalidEventError, match=message) as refused:
        check_event(event, "fn")
    assert "Nothing was invoked" in str(refused.value)


def test_extras_are_checked_with_their_own_path() -> None:
    with pytest.raises(InvalidEventError, match=r"extras\['since'\]\[0\] is a datetime.datetime"):
        check_json({"since": [dt.datetime(2026, 1, 1)]}, "extras")


def test_a_payload_above_the_limit_is_refused() -> None:
    refusal = r"is 1,0\d\d bytes, above Lambda's 1,000-byte request limit.*PIPESKIT_CONTEXT_BUCKET"
    with pytest.raises(PayloadTooLargeError, match=refusal):
        build_payload({"data": "x" * 1000}, BOOTSTRAP, "fn", 1000)


def test_dagster_aws_log_tail_reader_is_refused_naming_the_kits() -> None:
    with pytest.raises(UnsupportedComponentError, match="last 4 KB .* Use pipeskit's ResponsePayloadMessageReader"):
        PipesLambdaClient(message_reader=PipesLambdaLogsMessageReader())


def test_an_injector_whose_context_would_never_arrive_is_refused() -> None:
    with pytest.raises(UnsupportedComponentError, match="from S3.*LambdaEventContextInjector.*S3ContextInjector"):
        PipesLambdaClient(context_injector=PipesS3ContextInjector(bucket="b", client=object()))


def test_dagster_aws_event_injector_is_accepted() -> None:
    PipesLambdaClient(context_injector=PipesLambdaEventContextInjector())


@pytest.mark.parametrize(
    "event, message",
    [
        ({"pipeskit_item": "mine"}, "the fan-out's event uses 'pipeskit_item', the key of each item"),
        ({"DAGSTER_PIPES_MESSAGES": "mine"}, "uses DAGSTER_PIPES_MESSAGES, the key.* of the Pipes bootstrap"),
        ({"when": dt.date(2026, 11, 21)}, r"event\['when'\] is a datetime.date"),
    ],
)
def test_a_fan_out_event_that_cannot_work_is_refused_before_anything_is_sent(event, message: str) -> None:
    with pytest.raises(InvalidEventError, match=message):
        PipesLambdaClient().fan_out(context=build_asset_context(), items=["a"], function_name="fn", event=event)
