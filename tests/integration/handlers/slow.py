"""Opens Pipes, then runs past the function timeout."""

import time

from pipeskit_lambda import pipes_handler


@pipes_handler
def handler(event, context, pipes):
    pipes.log.info("starting a long job")
    time.sleep(float(event.get("sleep_s", 30)))
    return {"done": True}
