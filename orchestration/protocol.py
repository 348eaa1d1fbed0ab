"""The kit's additions to the Pipes wire protocol, as the orchestrator speaks them.

Mirrors ``pipeskit_lambda.protocol`` in the pipes layer (the two are checked against each other by
the test suite; the orchestrator never imports layer code).
"""

from __future__ import annotations

from typing import Final

ENVELOPE_KEY: Final = "__pipeskit__"
ENVELOPE_VERSION: Final = 1
CHANNEL_PARAM: Final = "pipeskit_channel"

RESPONSE_CHANNEL: Final = "response"
LOGS_CHANNEL: Final = "logs"

SYNC_PAYLOAD_LIMIT_BYTES: Final = 6 * 1024 * 1024
"""Lambda's synchronous invoke request (and response) payload limit."""
