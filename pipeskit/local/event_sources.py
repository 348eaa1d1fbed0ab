"""SQS event source mappings: poll queues and invoke functions with message batches.

Replaces moto's own delivery (see ``moto_patches._patch_sqs_event_source_delivery``)
with Lambda's behaviour: batches up to ``BatchSize`` gathered for at most
``MaximumBatchingWindowInSeconds``, at most ``ScalingConfig.MaximumConcurrency``
batches in flight, messages deleted only on success (or, with
``ReportBatchItemFailures``, all but the reported ones). Failed messages return after
the queue's visibility timeout; moto's SQS moves them to the dead-letter queue once
they were received ``maxReceiveCount`` times.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from moto.awslambda.models import lambda_backends
from moto.sqs.models import sqs_backends

from pipeskit.local.errors import AWSServiceError
from pipeskit.local.runtime.invoke import LambdaRuntime
from pipeskit.local.settings import LocalAWSSettings

logger = logging.getLogger(__name__)

SQS_RECEIVE_MAX = 10
_random = random.Random()


def _queue_of(arn: str) -> tuple[Any, str] | None:
    parts = arn.split(":")
    if len(parts) < 6 or parts[2] != "sqs":
        return None
    backend = sqs_backends[parts[4]][parts[3]]
    if parts[5] not in backend.queues:
        return None
    return backend, parts[5]


def sqs_record(message: Any, queue_arn: str) -> dict[str, Any]:
    """One ``Records`` entry of an SQS event, as Lambda builds it.

    Args:
        message: A moto SQS message (already received).
        queue_arn: The queue's ARN.

    Returns:
        The record.
    """
    attributes = {
        "ApproximateReceiveCount": str(message.approximate_receive_count),
        "SentTimestamp": str(message.sent_timestamp),
        "SenderId": str(message.sender_id),
        "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
    }
    if message.sequence_number:
        attributes["SequenceNumber"] = str(message.sequence_number)
    if message.group_id:
        attributes["MessageGroupId"] = str(message.group_id)
    if message.deduplication_id:
        attributes["MessageDeduplicationId"] = str(message.deduplication_id)
    message_attributes = {}
    for name, value in (message.message_attributes or {}).items():
        entry: dict[str, Any] = {
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType"),
        }
        if value.get("StringValue") is not None:
            entry["stringValue"] = value["StringValue"]
        if value.get("BinaryValue") is not None:
            binary = value["BinaryValue"]
            entry["binaryValue"] = binary.decode() if isinstance(binary, bytes) else binary
        message_attributes[name] = entry
    return {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.body_md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def failed_item_ids(payload: bytes, batch_ids: set[str]) -> set[str] | None:
    """Parse a ``ReportBatchItemFailures`` response.

    Args:
        payload: The function's response.
        batch_ids: Message ids in the batch.

    Returns:
        Ids to keep on the queue, or ``None`` when the response is invalid (then
        Lambda treats the whole batch as failed).
    """
    try:
        response = json.loads(payload) if payload else None
    except ValueError:
        return set()
    if not isinstance(response, dict):
        return set()
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    keep = set()
    for failure in failures:
        item = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not item or item not in batch_ids:
            return None
        keep.add(item)
    return keep


class _MappingWorker:
    """Polls the queue of one enabled mapping."""

    def __init__(
        self,
        uuid: str,
        esm: Any,
        runtime: LambdaRuntime,
        settings: Callable[[], LocalAWSSettings],
    ) -> None:
        self.uuid = uuid
        self.esm = esm
        self._runtime = runtime
        self._settings = settings
        self._stop = threading.Event()
        self._in_flight = 0
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"local-aws-esm-{uuid[:8]}", daemon=True)
        self._thread.start()

    def _max_concurrency(self) -> int:
        scaling = self.esm.scaling_config or {}
        return int(scaling.get("MaximumConcurrency") or self._settings().esm_default_max_concurrency)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._cond:
                    while self._in_flight >= self._max_concurrency() and not self._stop.is_set():
                        self._cond.wait(0.1)
                if self._stop.is_set():
                    return
                batch = self._collect()
                if not batch:
                    self._stop.wait(self._settings().esm_poll_interval_s)
                    continue
                with self._cond:
                    self._in_flight += 1
                threading.Thread(
                    target=self._deliver,
                    args=(batch,),
                    name=f"local-aws-esm-batch-{self.uuid[:8]}",
                    daemon=True,
                ).start()
            except Exception:
                logger.exception("event source mapping %s: poll failed", self.uuid)
                self._stop.wait(1.0)

    def _collect(self) -> list[Any]:
        located = _queue_of(self.esm.event_source_arn)
        if located is None:
            return []
        backend, queue_name = located
        queue = backend.queues[queue_name]
        batch_size = int(self.esm.batch_size or 10)
        window = float(self.esm.max_batch_window or 0)
        deadline = time.monotonic() + window
        batch: list[Any] = []
        while not self._stop.is_set():
            wanted = min(SQS_RECEIVE_MAX, batch_size - len(batch))
            received = backend.receive_message(
                queue_name, wanted, 0, int(queue.visibility_timeout), ["All"]
            )
            for message in received:  # a message whose visibility expired during the window
                batch = [m for m in batch if m.id != message.id]  # is kept once, newest receipt
                batch.append(message)
            if len(batch) >= batch_size:
                break
            if len(received) == wanted:
                continue  # more may be waiting
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (window <= 0):
                break
            if not batch:
                break  # the window starts with the first message
            self._stop.wait(min(remaining, max(0.01, self._settings().esm_poll_interval_s / 5)))
        return batch

    def _deliver(self, batch: list[Any]) -> None:
        try:
            arn = self.esm.event_source_arn
            located = _queue_of(arn)
            if located is None:
                return
            backend, queue_name = located
            event = {"Records": [sqs_record(m, arn) for m in batch]}
            try:
                result = self._runtime.invoke(self.esm.function_arn, json.dumps(event).encode())
            except AWSServiceError as exc:  # throttled or gone: messages return later
                logger.info("event source mapping %s: invoke failed: %s", self.uuid, exc)
                return
            if result.function_error:
                return  # the whole batch returns after the visibility timeout
            keep: set[str] | None = set()
            if "ReportBatchItemFailures" in (self.esm.function_response_types or []):
                keep = failed_item_ids(result.payload, {m.id for m in batch})
            if keep is None:
                return
            duplicate_rate = self._settings().esm_duplicate_delivery_rate
            for message in batch:
                if message.id not in keep:
                    try:
                        backend.delete_message(queue_name, message.receipt_handle)
                    except Exception:  # e.g. receipt handle no longer valid
                        logger.info("could not delete message %s", message.id)
                    if duplicate_rate and _random.random() < duplicate_rate:
                        # fault: SQS delivers at least once; this message will come a second time
                        backend.send_message(queue_name, message.body)
        except Exception:
            logger.exception("event source mapping %s: delivery failed", self.uuid)
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class EventSourcePoller:
    """Keeps one polling worker per enabled SQS event source mapping.

    Args:
        runtime: Runs the functions.
        settings: Returns the current settings.
    """

    def __init__(self, runtime: LambdaRuntime, settings: Callable[[], LocalAWSSettings]) -> None:
        self._runtime = runtime
        self._settings = settings
        self._workers: dict[str, _MappingWorker] = {}
        self._workers_lock = threading.Lock()  # the scan thread and stop() both change them
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-aws-esm", daemon=True)

    def start(self) -> None:
        """Start watching mappings."""
        self._thread.start()

    def _mappings(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for account_backends in list(lambda_backends.values()):
            for backend in list(account_backends.values()):
                for uuid, esm in list(backend._event_source_mappings.items()):
                    if esm.enabled and esm.event_source_arn.split(":")[2] == "sqs":
                        found[uuid] = esm
        return found

    def sync(self) -> None:
        """Start workers for new enabled mappings and stop those of gone/disabled ones."""
        wanted = self._mappings()
        with self._workers_lock:
            if self._stop.is_set():
                return
            for uuid in list(self._workers):
                if uuid not in wanted or wanted[uuid] is not self._workers[uuid].esm:
                    self._workers.pop(uuid).stop()
            for uuid, esm in wanted.items():
                if uuid not in self._workers:
                    self._workers[uuid] = _MappingWorker(uuid, esm, self._runtime, self._settings)

    def _run(self) -> None:
        while not self._stop.wait(min(0.2, self._settings().esm_poll_interval_s)):
            try:
                self.sync()
            except Exception:
                logger.exception("event source mapping scan failed")

    def stop(self) -> None:
        """Stop every worker."""
        self._stop.set()
        with self._workers_lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.join(2)
        if self._thread.is_alive():
            self._thread.join(2)
