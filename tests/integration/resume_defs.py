"""A reconstructable job for the fan-out resume test: its resource reads the endpoint, bucket and items
from the environment, as a code location would."""

import json
import os

from dagster import (
    AssetExecutionContext,
    Definitions,
    MaterializeResult,
    asset,
    define_asset_job,
    in_process_executor,
)

from pipeskit import FanOutSettings, PipesLambdaClient, S3MessageReader


@asset
def resumable(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
    summary = yield from lambda_pipes.stream_fan_out(
        context=context, items=json.loads(os.environ["RESUME_ITEMS"]), transport="invoke",
        function_name=os.environ["RESUME_FUNCTION"], deadline_s=float(os.environ["RESUME_DEADLINE_S"]),
    )  # fmt: skip
    summary.raise_for_failures()
    yield MaterializeResult(metadata=summary.metadata())


defs = Definitions(
    assets=[resumable],
    jobs=[define_asset_job("resume_job", selection=[resumable], executor_def=in_process_executor)],
    resources={
        "lambda_pipes": PipesLambdaClient(
            message_reader=S3MessageReader(),
            fan_out_settings=FanOutSettings(fan_out_poll_interval_s=0.2, fan_out_progress_interval_s=1.0),
        )
    },
)


def resume_job():
    return defs.resolve_job_def("resume_job")
