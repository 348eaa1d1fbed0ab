"""A durable handler whose step fails on each of its three attempts."""

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, StepConfig
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy

RETRIES = StepConfig(
    retry_strategy=create_retry_strategy(RetryStrategyConfig(max_attempts=3, initial_delay=Duration.from_minutes(10)))
)


@durable_execution
def handler(event: dict, context: DurableContext) -> dict:
    def load(step_context) -> int:
        print("attempting the load")
        raise ValueError(f"the source table {event['table']} is missing")

    return context.step(load, name="load", config=RETRIES)
