"""Failures of asynchronous invocations, read from the functions' on-failure destination queue.

When an ``Event`` invocation fails every attempt (or is too old to retry), Lambda sends a record to
the function's on-failure destination: ``requestContext.requestId``, ``condition`` and the
``responsePayload`` with the remote error. One `FailureWatcher` per queue and process receives them
for every run waiting on that queue and hands each run its own; a record of a run it does not know
(another process's) is made visible again at once, so no run steals another's.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

_watchers: dict[str, FailureWatcher] = {}
_watchers_lock = threading.Lock()


def failure_watcher(queue_url: str, sqs_client: Any) -> FailureWatcher:
    """The process-wide watcher of ``queue_url`` (started on first use)."""
    with _watchers_lock:
        watcher = _watchers.get(queue_url)
        if watcher is None:
            watcher = _watchers[queue_url] = FailureWatcher(queue_url, sqs_client)
        return watcher


def record_error(record: dict[str, Any]) -> dict[str, Any]:
    """The function's error document (``errorType``, ``errorMessage``, ``stackTrace``) of an on-failure
    record: its ``responsePayload``, else the record's ``condition`` (e.g. ``RetriesExhausted``)."""
    payload = record.get("responsePayload") if isinstance(record.get("responsePayload"), dict) else {}
    condition = (record.get("requestContext") or {}).get("condition", "")
    return {
        "errorType": payload.get("errorType") or condition or "Unknown",
        "errorMessage": payload.get("errorMessage") or f"the event ended with {condition}",
        "stackTrace": payload.get("stackTrace") or [],
    }


class FailureWatcher:
    """Receive on-failure records from one queue and keep them for the runs that wait on them.

    Args:
        queue_url: the on-failure destination queue.
        sqs_client: a boto3 SQS client.
    """

    def __init__(self, queue_url: str, sqs_client: Any) -> None:
        self._queue_url = queue_url
        self._sqs = sqs_client
        self._lock = threading.Condition()
        self._waiting: set[str] = set()
        self._records: dict[str, dict[str, Any]] = {}
        self._thread: threading.Thread | None = None

    def watch(self, request_id: str) -> None:
        """Start keeping the record of ``request_id``."""
        with self._lock:
            self._waiting.add(request_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._receive_loop, name="pipeskit-failures", daemon=True)
                self._thread.start()

    def forget(self, request_id: str) -> None:
        """The run of ``request_id`` ended."""
        with self._lock:
            self._waiting.discard(request_id)
            self._records.pop(request_id, None)

    def record(self, request_id: str) -> dict[str, Any] | None:
        """The on-failure record of ``request_id``, once it arrived."""
        with self._lock:
            return self._records.get(request_id)

    def _receive_loop(self) -> None:
        while True:
            with self._lock:
                if not self._waiting:
                    self._thread = None
                    return
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                ).get("Messages", [])
            except Exception:  # a failed receive is retried  # noqa: BLE001
                time.sleep(1)
                continue
            for message in messages:
                self._take(message)

    def _take(self, message: dict[str, Any]) -> None:
        try:
            record = json.loads(message["Body"])
            request_id = str(record["requestContext"]["requestId"])
        except (ValueError, KeyError, TypeError):
            request_id, record = "", {}
        with self._lock:
            mine = request_id in self._waiting
            if mine:
                self._records[request_id] = record
        if mine:
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        else:  # another run's (or another process's): visible again for its owner
            self._sqs.change_message_visibility(
                QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=2
            )
