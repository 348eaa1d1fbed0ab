"""A trivial handler: proves the function runs and that the pipes layer is importable."""

from __future__ import annotations

from typing import Any

import dagster_pipes  # noqa: F401  (from the pipes layer: fails loudly if the layer is missing)
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Greet ``event["name"]`` and say which function answered."""
    name = str(event.get("name", "world"))
    logger.info("saying hello", extra={"to": name})
    return {"greeting": f"hello, {name}", "function": context.function_name}
