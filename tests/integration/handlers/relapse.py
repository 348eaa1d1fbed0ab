"""Docs-style (no kit code): reports its environment, invocation and context; raises when asked.

Behind the kit's entrypoint, each invocation of a warm environment gets its own Pipes context even
after an earlier one in the same environment raised (dagster#22094).
"""

import uuid

from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes

ENVIRONMENT = uuid.uuid4().hex  # one per execution environment
COUNTER = {"invocations": 0}


def lambda_handler(event, _context):
    COUNTER["invocations"] += 1
    n = COUNTER["invocations"]
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        key = pipes.partition_key
        pipes.log.info(f"invocation {n} of {ENVIRONMENT} for {key}")
        pipes.report_custom_message({"environment": ENVIRONMENT, "invocation": n, "partition_key": key,
                                     "extras": pipes.extras})
        if event.get("fail"):
            raise RuntimeError(f"invocation {n} for {key} failed on purpose")
        pipes.report_asset_materialization(metadata={"partition_key": {"raw_value": key, "type": "text"},
                                                     "invocation": {"raw_value": n, "type": "int"}})
    return {"environment": ENVIRONMENT, "invocation": n}
