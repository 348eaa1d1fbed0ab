"""A boto3 client given by the caller, or created on first use: building a reader, injector or client
needs no AWS configuration, and one instance serves concurrent runs. (The client's machinery is
created on first use the same way.)"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class LazyClient:
    """Holds a client: the one given, else the factory's, created once under a lock.

    Args:
        given: the caller's client, or None.
        factory: builds the client on first use.
    """

    def __init__(self, given: Any | None, factory: Callable[[], Any]) -> None:
        self._client = given
        self._factory = factory
        self._lock = threading.Lock()

    def get(self) -> Any:
        """The client (created on first use)."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
                client = self._client
        return client

    def peek(self) -> Any | None:
        """The client if there is one yet, without creating it."""
        return self._client
