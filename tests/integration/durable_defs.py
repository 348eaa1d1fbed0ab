"""A reconstructable job for the durable re-attach test: its resource reads the endpoint, bucket and
function from the environment, as a code location would."""

import json
import os

from dagster import AssetCheckSpec, AssetExecutionContext, Definitions, asset, define_asset_job, in_process_executor

from pipeskit import LambdaClientSettings, PipesLambdaClient


@asset(check_specs=[AssetCheckSpec("rows_positive", asset="durable_asset")])
def durable_asset(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
    completed = lambda_pipes.run(
        context=context, function_name=os.environ["DURABLE_FUNCTION"], event=json.loads(os.environ["DURABLE_EVENT"])
    )
    context.log.info(f"returned {completed.return_value}")
    yield from completed.get_results()


defs = Definitions(
    assets=[durable_asset],
    jobs=[define_asset_job("durable_job", selection=[durable_asset], executor_def=in_process_executor)],
    resources={
        "lambda_pipes": PipesLambdaClient(channel="s3", settings=LambdaClientSettings(durable_status_interval_s=0.2))
    },
)


def durable_job():
    return defs.resolve_job_def("durable_job")
