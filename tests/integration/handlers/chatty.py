"""Docs-style (no kit code): messages amid the ordinary output a real function prints.

Progress text without a newline before each message (on stdout, while messages go to stderr), a
line that looks like a message but names an unknown method, a torn message line, and one message
longer than a CloudWatch log event (256 KB).
"""

import json
import sys

from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes


def lambda_handler(event, _context):
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        for i in range(5):
            sys.stdout.write(f"progress {i * 20}%...")
            sys.stdout.flush()
            pipes.report_custom_message({"i": i})
        print()
        print(json.dumps({"__dagster_pipes_version": "0.1", "method": "report_future_thing", "params": {}}))
        print('{"__dagster_pipes_version": "0.1", "method": "log", "params": {"message": "torn')
        pipes.report_custom_message({"big": "b" * int(event.get("big_bytes", 600_000))})
        pipes.report_asset_materialization(metadata={"rows": {"raw_value": 5, "type": "int"}})
