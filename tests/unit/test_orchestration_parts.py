"""Pure pieces of the orchestration side: wire constants, line framing, read budget, forwarding."""

import json
import time

import pytest

import layers.pipeskit_lambda.protocol as lambda_protocol
import orchestration.protocol as orchestrator_protocol
from orchestration import LambdaClientSettings, RateBudget
from orchestration.readers.base import LambdaInvocation, parse_message_line
from orchestration.readers.cloudwatch import LogForwarder, function_base_name, is_end_line, is_start_line

RID = "8f5c1f9e-1111-4c2b-9d55-0123456789ab"


def test_both_ends_speak_the_same_protocol() -> None:
    for name in ("ENVELOPE_KEY", "ENVELOPE_VERSION", "CHANNEL_PARAM", "RESPONSE_CHANNEL", "LOGS_CHANNEL"):
        assert getattr(lambda_protocol, name) == getattr(orchestrator_protocol, name), name
    assert lambda_protocol.DEFAULT_RESPONSE_BUDGET_BYTES < orchestrator_protocol.SYNC_PAYLOAD_LIMIT_BYTES


@pytest.mark.parametrize(
    "line, start, end",
    [
        (f"START RequestId: {RID} Version: $LATEST", True, False),
        (f"END RequestId: {RID}", False, True),
        ("END RequestId: 00000000-0000-0000-0000-000000000000", False, False),
        (json.dumps({"time": "t", "type": "platform.start", "record": {"requestId": RID}}), True, False),
        (json.dumps({"time": "t", "type": "platform.runtimeDone", "record": {"requestId": RID}}), False, True),
        (json.dumps({"time": "t", "type": "platform.report", "record": {"requestId": "other"}}), False, False),
        (f"user printed START RequestId: {RID}", False, False),
    ],
)
def test_invocation_framing_in_text_and_json_log_formats(line: str, start: bool, end: bool) -> None:
    assert is_start_line(line, RID) is start
    assert is_end_line(line, RID) is end


def test_only_a_whole_json_line_is_a_pipes_message() -> None:
    message = {"__dagster_pipes_version": "0.1", "method": "log", "params": {"message": "m", "level": "INFO"}}
    assert parse_message_line(json.dumps(message)) == message
    assert parse_message_line("prefix " + json.dumps(message)) is None
    assert parse_message_line('{"__dagster_pipes_version": "0.1", truncated') is None
    assert parse_message_line(json.dumps({"method": "log"})) is None


def test_function_names_are_reduced_to_the_base_name() -> None:
    assert function_base_name("fn") == "fn"
    assert function_base_name("fn:live") == "fn"
    assert function_base_name("arn:aws:lambda:us-east-1:123456789012:function:fn:3") == "fn"


def test_envelope_is_unwrapped_and_errors_are_not_envelopes() -> None:
    envelope = {"__pipeskit__": 1, "result": {"rows": 3}, "messages": []}
    ok = LambdaInvocation(function_name="fn", request_id=RID, payload=json.dumps(envelope).encode())
    assert ok.return_value == {"rows": 3}
    plain = LambdaInvocation(function_name="fn", request_id=RID, payload=b'{"rows": 3}')
    assert plain.envelope is None and plain.return_value == {"rows": 3}
    failed = LambdaInvocation(function_name="fn", request_id=RID, payload=json.dumps(envelope).encode(),
                              function_error="Unhandled")
    assert failed.envelope is None


def test_rate_budget_spaces_calls_beyond_its_burst() -> None:
    budget = RateBudget(rate=20, burst=1)
    started = time.monotonic()
    for _ in range(5):
        budget.acquire()
    assert time.monotonic() - started >= 4 / 20 * 0.95
    with pytest.raises(ValueError):
        RateBudget(rate=0)


class _Log:
    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def __getattr__(self, level: str):  # info, warning, error, critical
        return lambda message: self.records.append((level, message))


def test_forwarder_batches_ordinary_lines_and_keeps_warnings_apart() -> None:
    log = _Log()
    forwarder = LogForwarder(log, "[fn rid]", batch_bytes=25)  # type: ignore[arg-type]
    for line in ["a" * 10, "b" * 10, "c" * 10, json.dumps({"level": "ERROR", "message": "boom"}), "d"]:
        forwarder.add(line)
    forwarder.flush()
    assert [level for level, _ in log.records] == ["info", "error", "info"]
    assert log.records[0][1] == "[fn rid] log lines:\n" + "\n".join(["a" * 10, "b" * 10, "c" * 10])
    assert forwarder.forwarded == 5


def test_client_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPESKIT_READ_TIMEOUT_S", "1000")
    monkeypatch.setenv("PIPESKIT_THROTTLE_MAX_ATTEMPTS", "3")
    settings = LambdaClientSettings.from_env(max_pool_connections=4)
    assert (settings.read_timeout_s, settings.throttle_max_attempts, settings.max_pool_connections) == (1000.0, 3, 4)
    assert LambdaClientSettings().read_timeout_s > 900, "above Lambda's maximum function timeout"


def test_default_lambda_client_never_cuts_or_repeats_an_invoke(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestration.client import default_lambda_client

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config = default_lambda_client(LambdaClientSettings(max_pool_connections=64)).meta.config
    assert config.read_timeout == 960.0
    assert config.retries["total_max_attempts"] == 1
    assert config.max_pool_connections == 64


def test_demo_definitions_load_as_a_code_location() -> None:
    from dagster import Definitions

    from orchestration.definitions import defs

    Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {"daily_orders_summary", "orders_emea_summary", "orders_apac_summary", "docs_style_metric"}
