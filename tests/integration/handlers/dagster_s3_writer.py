"""A function using dagster-pipes' own PipesS3MessageWriter, with no kit code."""

import boto3
from dagster_pipes import PipesMappingParamsLoader, PipesS3MessageWriter, open_dagster_pipes


def lambda_handler(event, _context):
    writer = PipesS3MessageWriter(client=boto3.client("s3"), interval=0.2)
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event), message_writer=writer) as pipes:
        for i in range(int(event.get("messages", 10))):
            pipes.report_custom_message(i)
        pipes.report_asset_materialization(metadata={"writer": {"raw_value": "dagster-pipes", "type": "text"}})
