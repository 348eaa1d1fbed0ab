"""The kit's entrypoint finds the user's handler; the Lambda side's settings parse and refuse clearly."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pipeskit_lambda import entrypoint
from pipeskit_lambda.protocol import HANDLER_ENV_VAR
from pipeskit_lambda.settings import FunctionSettings, SettingsError


@pytest.fixture(autouse=True)
def fresh_handler_cache():
    entrypoint.user_handler.cache_clear()
    yield
    entrypoint.user_handler.cache_clear()


def test_the_entrypoint_runs_the_handler_named_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "user_code.py").write_text("def handle(event, context):\n    return {'got': event}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(HANDLER_ENV_VAR, "user_code.handle")
    try:
        assert entrypoint.handler({"x": 1}, None) == {"got": {"x": 1}}
    finally:
        sys.modules.pop("user_code", None)


@pytest.mark.parametrize(
    "value, message",
    [("", "must name the user handler as module.function"), ("json.no_such_function", "has no function")],
)
def test_a_bad_handler_setting_is_named(value: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HANDLER_ENV_VAR, value)
    with pytest.raises(entrypoint.HandlerConfigurationError, match=message):
        entrypoint.handler({}, None)


def test_function_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert FunctionSettings.env_var("handler") == HANDLER_ENV_VAR
    monkeypatch.setenv("PIPESKIT_RESPONSE_BUDGET_BYTES", "2048")
    assert FunctionSettings.from_env().response_budget_bytes == 2048


@pytest.mark.parametrize("value", ["lots", "10", str(7 * 1024 * 1024)])
def test_a_bad_response_budget_is_refused_with_its_name(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPESKIT_RESPONSE_BUDGET_BYTES", value)
    refusal = rf"PIPESKIT_RESPONSE_BUDGET_BYTES='?{value}'? is not valid: (it must be a int|the m)"
    with pytest.raises(SettingsError, match=refusal):
        FunctionSettings.from_env()
