"""Reports how much context it received (the extras' blob), through the kit's decorator."""

import hashlib

from pipeskit_lambda import pipes_handler


@pipes_handler
def handler(event, context, pipes):
    blob = pipes.extras.get("blob", "")
    pipes.report_asset_materialization(metadata={"blob_bytes": {"raw_value": len(blob), "type": "int"}})
    return {"blob_bytes": len(blob), "blob_sha256": hashlib.sha256(blob.encode()).hexdigest()}
