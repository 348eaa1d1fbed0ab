"""What the kit adds on the wire next to the Pipes protocol (mirrored in ``orchestration.protocol``).

The orchestrator puts ``pipeskit_channel`` in the decoded ``DAGSTER_PIPES_MESSAGES`` params to say
which channel carries messages back; the Lambda side answers with an *envelope* as the invoke
response so the orchestrator gets the handler's own return value next to the messages.
"""

from __future__ import annotations

from typing import Any, Final, TypedDict

ENVELOPE_KEY: Final = "__pipeskit__"
ENVELOPE_VERSION: Final = 1
CHANNEL_PARAM: Final = "pipeskit_channel"

RESPONSE_CHANNEL: Final = "response"
LOGS_CHANNEL: Final = "logs"

# Lambda's synchronous response limit is 6 MB; keep room for the envelope and the JSON framing.
DEFAULT_RESPONSE_BUDGET_BYTES: Final = 5_500_000


class Envelope(TypedDict, total=False):
    """The invoke response of a Pipes session run by the kit.

    Keys:
        __pipeskit__: envelope version.
        result: the handler's own return value.
        messages: Pipes messages, for the response channel (absent when they went to the logs).
        messages_in_logs: true when messages were written to the function's log instead.
        log_group_name / log_stream_name: where this invocation's log lines are.
    """

    result: Any
    messages: list[dict[str, Any]]
    messages_in_logs: bool
    log_group_name: str
    log_stream_name: str
