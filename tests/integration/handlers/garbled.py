"""Docs-style (no kit code): real Pipes messages amid corrupted and partial message lines.

Between numbered log messages and custom messages it prints a message line cut short (torn JSON), a
message naming a method no Dagster knows, garbage carrying the Pipes marker, and progress text with
no newline right before a real message. ``fail`` makes it raise after the last message.
"""

import json
import sys

from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes

VERSION = {"__dagster_pipes_version": "0.1"}
TORN = json.dumps({**VERSION, "method": "log", "params": {"message": "torn", "level": "INFO"}})[:-12]
UNKNOWN = json.dumps({**VERSION, "method": "report_future_thing", "params": {}})
GARBAGE = '#@!garbage "__dagster_pipes_version": 0.1, "method" ~~ not json at all'


def lambda_handler(event, _context):
    messages = int(event.get("messages", 10))
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        for i in range(messages):
            pipes.log.info(f"message {i:03d}")
            if i == 1:
                print(TORN, file=sys.stderr, flush=True)
            if i == 2:
                print(UNKNOWN, file=sys.stderr, flush=True)
            if i == 3:
                print(GARBAGE, flush=True)
            if i == 4:
                sys.stdout.write("progress 50%...")  # no newline: the next message shares its line
                sys.stdout.flush()
            pipes.report_custom_message({"i": i})
        pipes.report_asset_materialization(metadata={"messages": {"raw_value": messages, "type": "int"}})
        if event.get("fail"):
            raise RuntimeError(f"failed after {messages} messages")
    return {"messages": messages}
