"""Docs-style (no kit code): reports N log messages, then dies the way the event says.

Modes: ``raise`` (an exception), ``timeout`` (sleeps past the function timeout), ``exit``
(``os._exit(1)``), ``kill`` (SIGKILL, what the out-of-memory killer sends), ``marshal`` (returns a
value Lambda cannot serialize to JSON).
"""

import os
import signal
import time

from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes


def lambda_handler(event, _context):
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        for i in range(int(event.get("messages", 100))):
            pipes.log.info(f"message {i:03d}")
        mode = event["mode"]
        if mode == "raise":
            raise ValueError("the function's own error")
        if mode == "timeout":
            time.sleep(600)
        if mode == "exit":
            os._exit(1)
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
    return {"not JSON": {1, 2, 3}}  # mode == "marshal": a set
