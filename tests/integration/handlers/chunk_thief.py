"""Reports a message, waits until its chunk is uploaded, deletes that chunk, then reports more."""

import time

import boto3
from dagster_pipes import DAGSTER_PIPES_MESSAGES_ENV_VAR, decode_param

from pipeskit_lambda import pipes_handler


@pipes_handler
def handler(event, context, pipes):
    params = decode_param(event[DAGSTER_PIPES_MESSAGES_ENV_VAR])
    pipes.log.info("in the first chunk")
    s3 = boto3.client("s3")
    deadline = time.monotonic() + 20  # the writer uploads it within its 1 s interval; a busy host takes longer
    stolen = False
    while not stolen and time.monotonic() < deadline:
        for item in s3.list_objects_v2(Bucket=params["bucket"], Prefix=params["key_prefix"]).get("Contents", []):
            if item["Key"].endswith("/1.json"):
                s3.delete_object(Bucket=params["bucket"], Key=item["Key"])
                stolen = True
        time.sleep(0.2)
    if not stolen:
        raise RuntimeError("chunk 1 was never uploaded, so it could not be stolen")
    pipes.log.info("in the second chunk")
    return "stole chunk 1"
