"""Reports a few messages, the last one stamped with when the function finished its work."""

import time

import boto3
from dagster_pipes import PipesMappingParamsLoader, PipesS3MessageWriter, open_dagster_pipes


def lambda_handler(event, _context):
    writer = PipesS3MessageWriter(client=boto3.client("s3"))  # dagster-pipes' defaults
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event), message_writer=writer) as pipes:
        for i in range(int(event.get("messages", 20))):
            pipes.report_custom_message({"i": i})
        time.sleep(float(event.get("work_s", 0)))
        pipes.report_custom_message({"ended_at": time.time()})
