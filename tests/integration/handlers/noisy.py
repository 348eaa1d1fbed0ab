"""Docs-style (no kit code): many custom messages interleaved with megabytes of ordinary output."""

import sys

from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes


def lambda_handler(event, _context):
    messages = int(event.get("messages", 1000))
    noise_bytes = int(event.get("noise_bytes", 2_000_000))
    line = "x" * 199
    noise_lines = noise_bytes // 200  # spread evenly before the messages, in total noise_bytes
    printed = 0
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        for i in range(messages):
            while printed < (i + 1) * noise_lines // messages:
                print(line)
                printed += 1
            pipes.report_custom_message({"i": i})
        sys.stdout.flush()
        pipes.report_asset_materialization(metadata={"messages": {"raw_value": messages, "type": "int"}})
