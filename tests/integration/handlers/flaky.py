"""Fails its first attempt after reporting, succeeds on Lambda's retry (a marker object in S3 tells)."""

import boto3
from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes


def lambda_handler(event, _context):
    s3 = boto3.client("s3")
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        pipes.log.info("attempt starting")
        pipes.report_asset_materialization(metadata={"attempt": {"raw_value": "any", "type": "text"}})
        marker = {"Bucket": event["bucket"], "Key": event["marker"]}
        seen = s3.list_objects_v2(Bucket=event["bucket"], Prefix=event["marker"]).get("KeyCount", 0)
        if event.get("always_fail") or not seen:
            s3.put_object(Body=b"failed once", **marker)
            raise RuntimeError("first attempt fails")
    return "succeeded on a retry"
