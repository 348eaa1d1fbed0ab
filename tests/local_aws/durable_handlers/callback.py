"""A durable handler that waits for a callback an outside system completes."""

import json

from aws_durable_execution_sdk_python import DurableContext, durable_execution


@durable_execution
def handler(event: dict, context: DurableContext) -> dict:
    callback = context.create_callback(name="approval")
    print(f"callback id: {callback.callback_id}")
    approval = json.loads(callback.result())  # a callback's result is handed over as sent
    return {"approved_by": approval["by"]}
