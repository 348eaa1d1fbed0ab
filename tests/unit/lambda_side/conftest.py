"""Build Pipes bootstrap events the way the kit's client does, without an orchestrator."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from dagster_pipes import DAGSTER_PIPES_CONTEXT_ENV_VAR, DAGSTER_PIPES_MESSAGES_ENV_VAR, encode_param

from pipeskit_lambda.protocol import CHANNEL_PARAM, RESPONSE_CHANNEL, STDERR, STDIO_PARAM

CONTEXT_DATA: dict[str, Any] = {
    "asset_keys": ["lambda_asset"],
    "code_version_by_asset_key": None,
    "provenance_by_asset_key": None,
    "partition_key": None,
    "partition_key_range": None,
    "partition_time_window": None,
    "run_id": "run-1",
    "job_name": "job",
    "retry_number": 0,
    "extras": {"rows": 3},
}


@pytest.fixture
def bootstrap_event() -> Callable[..., dict[str, Any]]:
    """``bootstrap_event(channel, **event)``: an invoke event carrying the kit's bootstrap
    (``channel=None``: a bootstrap from another orchestrator)."""

    def _make(channel: str | None = RESPONSE_CHANNEL, **event: Any) -> dict[str, Any]:
        params: dict[str, Any] = {STDIO_PARAM: STDERR}
        if channel:
            params[CHANNEL_PARAM] = channel
        return {
            **event,
            DAGSTER_PIPES_CONTEXT_ENV_VAR: encode_param({"data": CONTEXT_DATA}),
            DAGSTER_PIPES_MESSAGES_ENV_VAR: encode_param(params),
        }

    return _make


@pytest.fixture
def lambda_context() -> SimpleNamespace:
    """The attributes of Lambda's context object that the kit reads."""
    return SimpleNamespace(
        aws_request_id="req-1",
        log_group_name="/aws/lambda/fn",
        log_stream_name="2026/11/21/[$LATEST]abc",
        function_name="fn",
    )
