"""The durable handlers of the tests (`tests/integration/handlers/durable_pipes.py`, which the local AWS
runs too), run here by the durable SDK's in-process test runner (its clock skips the waits)."""

from __future__ import annotations

import json
from typing import Any

from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestResult, DurableFunctionTestRunner

from tests.integration.handlers.durable_pipes import EXPECTED_LOGS, NESTED_LOGS, failing, nested, three_steps

__all__ = ["EXPECTED_LOGS", "NESTED_LOGS", "failing", "nested", "run_durably", "three_steps"]


def run_durably(handler: Any, execution_input: dict[str, Any] | str) -> DurableFunctionTestResult:
    """Run ``handler``'s whole durable execution in-process, its waits skipped."""
    text = execution_input if isinstance(execution_input, str) else json.dumps(execution_input)
    with DurableFunctionTestRunner(handler=handler) as runner:
        return runner.run(input=text, execution_timeout=60)
