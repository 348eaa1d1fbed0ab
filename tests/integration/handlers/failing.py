"""Reports progress, then fails with an unhandled exception."""

from pipeskit_lambda import pipes_handler


def parse(value):
    raise ValueError(f"bad input: {value!r} is not a number")


@pipes_handler
def handler(event, context, pipes):
    pipes.log.info("about to parse")
    print("ordinary output before the failure")
    return parse(event["value"])
