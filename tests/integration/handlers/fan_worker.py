"""An ordinary Pipes handler consuming the work queue (the kit's entrypoint runs each SQS record as its
own session and reports the failed ones). Its items say how to fail: ``fail: once`` (first attempt
only, a marker in S3 tells) or ``fail: always``; ``sleep_s`` stands for work; otherwise it reports a
materialization and returns the item's id."""

import time

import boto3
from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes

from pipeskit_lambda.protocol import ITEM_KEY


def handler(event, _context):
    item = event[ITEM_KEY]
    if isinstance(item, str):  # a partition key
        item = {"id": item}
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        pipes.log.info(f"item {item['id']}")
        time.sleep(float(item.get("sleep_s", 0)))
        if item.get("fail") == "always":
            raise ValueError(f"item {item['id']} always fails")
        if item.get("fail") == "once":
            s3, marker = boto3.client("s3"), {"Bucket": item["bucket"], "Key": f"markers/{item['run']}/{item['id']}"}
            if not s3.list_objects_v2(Bucket=item["bucket"], Prefix=marker["Key"]).get("KeyCount"):
                s3.put_object(Body=b"failed once", **marker)
                raise RuntimeError(f"item {item['id']} fails its first attempt")
        partition = pipes.partition_key if pipes.is_partition_step else None
        pipes.report_asset_materialization(
            asset_key=item.get("asset_key") or pipes.asset_key,
            metadata={
                "item": {"raw_value": item["id"], "type": "text"},
                "partition_key": {"raw_value": partition, "type": "__infer__"},
            },
        )
    return {"id": item["id"]}
