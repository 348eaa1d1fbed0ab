"""Fan-out: many Pipes sessions from one asset, through the SQS work queue or asynchronous invokes.

Each item is its own Pipes session: its own context (for a single-run backfill, its own partition
key) and its own prefix in the messages bucket, where the Lambda side's S3 writer uploads its
messages and its return value. One poller lists the fan-out's prefix for every item at once. SQS
delivers at least once and Lambda retries: for each item the first attempt that closes without an
exception counts, every other one is a duplicate absorbed (its messages but logs were held, so it
never adds a materialization). An item that fails every attempt lands in the dead-letter queue (or
the on-failure destination, for invokes) and is reported failed with its error; the deadline turns
what is still pending into failures. A marker per finished item makes a re-executed run skip it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetMaterialization,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    PipesMessageHandler,
    PipesMessageReader,
)
from dagster_pipes import (
    DAGSTER_PIPES_CONTEXT_ENV_VAR,
    DAGSTER_PIPES_MESSAGES_ENV_VAR,
    PipesParams,
    decode_param,
    encode_param,
)

from pipeskit_lambda.protocol import (
    ATTEMPT_PREFIX,
    BUCKET_PARAM,
    CHANNEL_PARAM,
    ITEM_KEY,
    KEY_PREFIX_PARAM,
    REQUEST_ID_METADATA,
    RESULT_OBJECT,
    RESULT_PARAM,
    S3_CHANNEL,
)

from ._dagster import build_context_data
from .attempt_ends import EventTracking
from .channels.chunks import chunk_key, chunk_messages, closing, delete_keys, exception_text, list_keys
from .errors import FanOutFailedError, InvalidFanOutError
from .failures import record_error
from .invoke import invoke_function
from .settings import DeploymentSettings, FanOutSettings, LambdaClientSettings

MARKER = "done.json"
_RETURNED_GRACE_S = 5.0
"""An invoked item whose attempt returned has its result in S3 before its REPORT line: this long after,
a missing result was refused or lost."""
_RETRY_DELAYS_S = 180.0
"""Lambda waits about 1 then 2 minutes before retrying a failed event."""


@dataclass
class ItemResult:
    """What became of one item.

    Attributes:
        index: the item's position in ``items``.
        item: the item.
        status: ``succeeded``, ``failed`` or ``pending`` (never seen to end before the deadline).
        return_value: the function's return value for it.
        error: why it failed.
        request_id: the request id of the invocation whose attempt counted (succeeded items).
        attempts: attempts seen (retries and duplicate deliveries included).
    """

    index: int
    item: Any
    status: Literal["succeeded", "failed", "pending"] = "pending"
    return_value: Any = None
    error: str | None = None
    request_id: str | None = None
    attempts: int = 0


@dataclass
class FanOutSummary:
    """The outcome of a fan-out: a result per item, and how many duplicate deliveries were absorbed.

    Attributes:
        results: a result per item, in the items' order.
        events: the items' materializations (one per item, or per partition) and check results, to
            yield from the asset: ``yield from summary.events``.
        duplicates: duplicate deliveries and retried attempts absorbed.
        wall_s: how long the fan-out took.
        resumed: items a previous execution of the run had finished (skipped).
        tolerated_failures: failed items allowed (a count, or a fraction below 1).
    """

    results: list[ItemResult]
    events: list[AssetMaterialization | AssetCheckResult] = field(default_factory=list)
    duplicates: int = 0
    wall_s: float = 0.0
    resumed: int = 0
    tolerated_failures: int | float = 0

    def raise_for_failures(self) -> None:
        """Fail the step when more items failed than tolerated (after yielding `events`).

        Raises:
            FanOutFailedError: with the summary in its metadata.
        """
        tolerated = self.tolerated_failures
        allowed = tolerated if isinstance(tolerated, int) else tolerated * len(self.results)
        if self.failed > allowed:
            failed = [r for r in self.results if r.status == "failed"]
            first = "; ".join(f"item {r.index} ({r.item!r}): {r.error}" for r in failed[:3])
            more = f" and {len(failed) - 3} more (all in the metadata)" if len(failed) > 3 else ""
            raise FanOutFailedError(
                description=f"{self.failed} of {len(self.results)} items failed, more than the {tolerated} "
                f"tolerated: {first}{more}. Re-executing the run skips the items that succeeded.",
                metadata=self.metadata(),
            )

    @property
    def succeeded(self) -> int:
        return sum(r.status == "succeeded" for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.results)

    def metadata(self) -> dict[str, Any]:
        """The summary as Dagster metadata."""
        failures = [{"index": r.index, "item": r.item, "error": r.error} for r in self.results if r.status == "failed"]
        return {
            "items": MetadataValue.int(len(self.results)),
            "succeeded": MetadataValue.int(self.succeeded),
            "failed": MetadataValue.int(self.failed),
            "duplicates_absorbed": MetadataValue.int(self.duplicates),
            "resumed": MetadataValue.int(self.resumed),
            "wall_s": MetadataValue.float(round(self.wall_s, 3)),
            "failures": MetadataValue.json(failures[:100]),
        }


@dataclass
class _Attempt:
    next_chunk: int = 1
    closed: bool = False
    exception: dict[str, Any] | None = None
    held: list[dict[str, Any]] = field(default_factory=list)
    reported: bool = False  # its failure is in the step's log


@dataclass
class _Item:
    result: ItemResult
    handler: PipesMessageHandler | None = None
    attempts: dict[str, _Attempt] = field(default_factory=dict)
    partition: str | None = None
    submitted: bool = False
    dead_lettered: float | None = None  # when its message reached the dead-letter queue
    request_id: str | None = None  # its asynchronous invoke's (transport "invoke")
    invoked_at: float = 0.0
    ends_seen: int = 0  # attempt ends (REPORT lines) looked at
    failed_attempts: int = 0
    end_error: str | None = None  # the last failed attempt's, as Lambda tells it
    returned_at: float | None = None  # when an attempt was seen to return (REPORT without an error)


class FanOut:
    """One fan-out call (see `pipeskit.PipesLambdaClient.fan_out`)."""

    def __init__(
        self,
        *,
        context: OpExecutionContext | AssetExecutionContext,
        function_name: str | None,
        items: Sequence[Any],
        transport: Literal["sqs", "invoke"],
        channel: Any,
        sqs: Any,
        invoke: Any,
        settings: FanOutSettings,
        deployment: DeploymentSettings,
        queue_url: str | None,
        max_concurrency: int | None,
        tolerated_failures: int | float,
        deadline_s: float | None,
        extras: dict[str, Any] | None,
        invoke_settings: LambdaClientSettings,
        tracking: Callable[[str], EventTracking] | None = None,
    ) -> None:
        self.context = context
        self.function_name = function_name
        self.transport = transport
        self.bucket = channel.bucket  # the S3 channel's: each item is a session on it
        self.s3 = channel.client
        self.sqs = sqs
        self.invoke = invoke
        self.invoke_settings = invoke_settings
        self._make_tracking = tracking
        self.tracking: EventTracking | None = None  # how each invoked item's attempts end (transport "invoke")
        self.settings = settings
        self.queue_url = queue_url or deployment.work_queue_url
        self.dead_letter_queue_url = deployment.dead_letter_queue_url
        session_prefix = channel.s3_settings.s3_session_prefix
        self.max_concurrency = max_concurrency
        self.tolerated = tolerated_failures
        self.deadline_s = deadline_s
        self.extras = dict(extras or {})
        key = json.dumps([_run_key(context), function_name or self.queue_url, list(items)], default=str, sort_keys=True)
        self.prefix = f"{session_prefix.strip('/')}/fanout-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        partitioned = context.has_partition_key_range or context.has_partition_key
        partitions = set(context.partition_keys) if partitioned else set()
        self.items = [
            _Item(ItemResult(index, item), partition=str(item) if str(item) in partitions else None)
            for index, item in enumerate(items)
        ]
        self.duplicates = 0
        self.requests = 0
        self.events: list[AssetMaterialization | AssetCheckResult] = []
        self._yielded = 0  # events already handed to a stream()
        self._unmarked: list[_Item] = []  # ended items whose resume markers are not written yet
        self.streaming = True  # False under run(): the caller yields the events after it returns
        self._dlq_seen: set[str] = set()
        self._queue_terms: tuple[int | None, int | None] = (None, None)

    # -- the whole call ------------------------------------------------------------------------

    def run(self) -> FanOutSummary:
        """The whole fan-out; the items' events are collected in the summary."""
        self.streaming = False
        stream, events = self.stream(), []
        while True:
            try:
                events.append(next(stream))
            except StopIteration as done:
                summary: FanOutSummary = done.value
                summary.events = events
                return summary

    def stream(self) -> Generator[AssetMaterialization | AssetCheckResult, None, FanOutSummary]:
        """The fan-out, yielding each item's events as it ends; returns the summary."""
        if self.transport == "sqs" and not self.queue_url:
            raise InvalidFanOutError(
                "fan_out over SQS needs the work queue: pass queue_url=..., or set "
                f"{DeploymentSettings.env_var('work_queue_url')} (the stack's WorkQueueUrl output)"
            )
        if self.transport == "invoke" and not self.function_name:
            raise InvalidFanOutError(
                "fan_out with transport='invoke' needs function_name=...: the function each item is invoked on; "
                "nothing was sent"
            )
        started = time.monotonic()
        if self.transport == "invoke" and self._make_tracking is not None:
            self.tracking = self._make_tracking(self.function_name)
        if self.transport == "sqs":
            self._queue_terms = self._read_queue_terms()
        resumed = self._resume()
        base = build_context_data(self.context, self.extras)
        pending = [item for item in self.items if item.result.status == "pending"]
        limit = self.max_concurrency or len(pending) or 1
        deadline = started + self.deadline_s if self.deadline_s else None
        last_progress = 0.0
        with ThreadPoolExecutor(max_workers=min(16, limit)) as pool:
            while True:
                open_items = [i for i in self.items if i.submitted and i.result.status == "pending"]
                room = limit - len(open_items)
                batch = [i for i in pending if not i.submitted][: max(0, room)]
                if batch:
                    self._submit(batch, base, pool)
                self._poll()
                if self.tracking is not None:
                    self._follow_invokes(self.tracking)
                new_events, self._yielded = self.events[self._yielded :], len(self.events)
                yield from new_events  # resumed: Dagster has recorded them
                if self.streaming:
                    self._write_markers()
                if self.transport == "sqs" and self.dead_letter_queue_url:
                    self._read_dead_letters()
                    self._settle_dead_letters()
                remaining = [i for i in self.items if i.result.status == "pending"]
                now = time.monotonic()
                if now - last_progress >= self.settings.fan_out_progress_interval_s or not remaining:
                    self._progress(started)
                    last_progress = now
                if not remaining:
                    break
                if deadline is not None and now > deadline:
                    reason = f"no outcome within the fan-out deadline ({self.deadline_s} s)"
                    for item in remaining:
                        self._finish(item, "failed", error=reason)
                    break
                time.sleep(self.settings.fan_out_poll_interval_s)
        if self.tracking is not None:
            for item in self.items:
                if item.request_id:
                    self.tracking.forget(item.request_id)
        summary = FanOutSummary(
            [i.result for i in self.items], [], self.duplicates, time.monotonic() - started, resumed,
            self.tolerated,
        )
        allowed = self.tolerated if isinstance(self.tolerated, int) else self.tolerated * len(self.items)
        if summary.failed > allowed:  # a re-execution will resume: it must know what ended
            self._write_markers()
        self._clean_up(keep_markers=summary.failed > allowed)
        return summary

    # -- submitting ----------------------------------------------------------------------------

    def _bootstrap(self, item: _Item, base: dict[str, Any]) -> dict[str, str]:
        data = copy.deepcopy(base)
        if item.partition is not None:
            data["partition_key"] = item.partition
            data["partition_key_range"] = {"start": item.partition, "end": item.partition}
            window = _time_window(self.context, item.partition)
            data["partition_time_window"] = window
        messages = {
            BUCKET_PARAM: self.bucket,
            KEY_PREFIX_PARAM: f"{self.prefix}/{item.result.index}",
            CHANNEL_PARAM: S3_CHANNEL,
            RESULT_PARAM: True,
        }
        return {DAGSTER_PIPES_CONTEXT_ENV_VAR: encode_param({"data": data}),
                DAGSTER_PIPES_MESSAGES_ENV_VAR: encode_param(messages)}

    def _submit(self, batch: list[_Item], base: dict[str, Any], pool: ThreadPoolExecutor) -> None:
        bodies = []
        for item in batch:
            item.submitted = True
            item.handler = PipesMessageHandler(self.context, _NoReader())
            bodies.append((item, json.dumps({ITEM_KEY: item.result.item, **self._bootstrap(item, base)}, default=str)))
        if self.transport == "sqs":
            for start in range(0, len(bodies), 10):
                entries = [{"Id": str(i.result.index), "MessageBody": body} for i, body in bodies[start : start + 10]]
                self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
        else:
            list(pool.map(lambda pair: self._invoke_event(*pair), bodies))

    def _invoke_event(self, item: _Item, body: str) -> None:
        """Queue one item's asynchronous invoke; a 429 backs off and is tried again (`invoke_function`)."""
        assert self.function_name is not None  # checked by stream()
        settings = self.invoke_settings
        invocation = invoke_function(
            self.invoke, self.function_name, body.encode(), invocation_type="Event", settings=settings
        )
        item.request_id, item.invoked_at = invocation.request_id, time.monotonic()
        if self.tracking is not None:
            self.tracking.watch(invocation.request_id, invocation.started_ms)

    # -- following -----------------------------------------------------------------------------

    def _follow_invokes(self, tracking: EventTracking) -> None:
        """Invoked items whose attempts ended badly, as Lambda tells it (REPORT lines, the on-failure
        destination): each failed attempt is logged when seen; the item fails after the last attempt
        Lambda makes, or when it returned but its result never reached S3."""
        now = time.monotonic()
        margin = self.invoke_settings.async_timeout_margin_s
        for item in self.items:
            rid = item.request_id
            if rid is None or item.result.status != "pending":
                continue
            record = tracking.failure_record(rid)
            if record is not None:
                error = record_error(record)
                self._finish(item, "failed", error=f"{error['errorType']}: {error['errorMessage']}")
                continue
            for end in tracking.attempt_ends(rid)[item.ends_seen :]:
                item.ends_seen += 1
                if end.status == "success":
                    item.returned_at = now
                    continue
                item.failed_attempts += 1
                item.end_error = item.result.error or f"{end.error_type or end.status} (Lambda's status: {end.status})"
                self.context.log.warning(
                    f"[pipeskit fan-out] item {item.result.index} ({item.result.item!r}): attempt "
                    f"{item.failed_attempts} of {tracking.max_attempts} failed: {item.end_error} "
                    f"[request id {rid}]"
                )
            if item.failed_attempts >= tracking.max_attempts:
                self._finish(item, "failed", error=item.result.error or item.end_error)
            elif item.returned_at is not None and now - item.returned_at > _RETURNED_GRACE_S:
                self._finish(item, "failed", error=(
                    f"the function returned [request id {rid}] but its result never reached "
                    f"s3://{self.bucket}/{self.prefix}/{item.result.index}/ (its uploads were refused or lost); its "
                    f"log holds its messages: pipeskit logs {self.function_name} --request-id {rid}"
                ))  # fmt: skip
            elif tracking.ends is None:
                silence = (tracking.timeout_s + margin) * tracking.max_attempts + _RETRY_DELAYS_S
                if now - item.invoked_at > silence:
                    self._finish(item, "failed", error=(
                        f"Sandbox.Timedout: no word from request {rid} within {silence:.0f} s{tracking.silence_note}"
                    ))  # fmt: skip

    def _list(self) -> list[str]:
        keys, requests = list_keys(self.s3, self.bucket, self.prefix)
        self.requests += requests
        return keys

    def _poll(self) -> None:
        chunks: dict[int, dict[str, dict[int, str]]] = {}
        results: dict[tuple[int, str], str] = {}
        for key in self._list():
            index, _, relative = key[len(self.prefix) + 1 :].partition("/")
            if not index.isdigit():
                continue
            attempt, _, name = relative.partition("/")
            if name == RESULT_OBJECT and attempt.startswith(ATTEMPT_PREFIX):
                results[(int(index), attempt)] = key
                continue
            chunk = chunk_key(relative)
            if chunk is not None and chunk.attempt:  # the kit's writer: every attempt has its folder
                chunks.setdefault(int(index), {}).setdefault(chunk.attempt, {})[chunk.number] = key
        for index, attempts in chunks.items():
            if index >= len(self.items):
                continue
            item = self.items[index]
            if item.handler is None:  # not submitted by this execution: resumed (its old chunks linger)
                continue
            for name, numbered in attempts.items():
                attempt = item.attempts.setdefault(name, _Attempt())
                item.result.attempts = len(item.attempts)
                while attempt.next_chunk in numbered:
                    body = self.s3.get_object(Bucket=self.bucket, Key=numbered[attempt.next_chunk])["Body"].read()
                    self.requests += 1
                    attempt.next_chunk += 1
                    self._take(item, attempt, body)
                if attempt.exception and not attempt.reported and self.transport == "sqs":
                    self._report_failed_attempt(item, attempt)
                if attempt.closed and not attempt.exception and (index, name) in results:
                    if item.result.status == "pending":
                        stored = self.s3.get_object(Bucket=self.bucket, Key=results[(index, name)])
                        value = json.loads(stored["Body"].read())
                        item.result.request_id = stored.get("Metadata", {}).get(REQUEST_ID_METADATA) or None
                        self.requests += 1
                        self._succeed(item, attempt, value)
                    elif item.result.status == "succeeded" and not getattr(attempt, "counted", False):
                        attempt.counted = True  # type: ignore[attr-defined]
                        self.duplicates += 1

    def _take(self, item: _Item, attempt: _Attempt, body: bytes) -> None:
        assert item.handler is not None
        for message in chunk_messages(body):
            if message.get("method") == "log" and item.result.status == "pending":
                item.handler.handle_message(message)
            else:
                attempt.held.append(message)
            closed, exception = closing(message)
            if closed:
                attempt.closed, attempt.exception = True, exception
                if attempt.exception:
                    item.result.error = exception_text(attempt.exception)

    def _read_queue_terms(self) -> tuple[int | None, int | None]:
        """The work queue's ``maxReceiveCount`` and visibility timeout (None when they cannot be read)."""
        try:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["RedrivePolicy", "VisibilityTimeout"]
            ).get("Attributes", {})
            redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
            count = int(redrive["maxReceiveCount"]) if "maxReceiveCount" in redrive else None
            return count, int(attributes["VisibilityTimeout"]) if "VisibilityTimeout" in attributes else None
        except Exception:  # the terms only enrich the attempt warnings  # noqa: BLE001
            return None, None

    def _report_failed_attempt(self, item: _Item, attempt: _Attempt) -> None:
        """A failed SQS delivery of an item, in the step's log when it is seen: which attempt, the error,
        and what SQS does next."""
        attempt.reported = True
        failed = sum(1 for a in item.attempts.values() if a.exception)
        max_receive, visibility = self._queue_terms
        of = f" of {max_receive}" if max_receive else ""
        if max_receive and failed >= max_receive:
            then = "it moves to the dead-letter queue"
        else:
            after = f" once its visibility timeout ({visibility} s) passes" if visibility else ""
            then = f"SQS delivers it again{after}"
        self.context.log.warning(
            f"[pipeskit fan-out] item {item.result.index} ({item.result.item!r}): attempt {failed}{of} failed: "
            f"{exception_text(attempt.exception or {})}; {then}"
        )

    def _succeed(self, item: _Item, attempt: _Attempt, value: Any) -> None:
        assert item.handler is not None
        for message in attempt.held:
            item.handler.handle_message(message)
        attempt.held = []
        self._report(item)
        self._finish(item, "succeeded", return_value=value)
        attempt.counted = True

    def _report(self, item: _Item) -> None:
        """The item's materializations (one per item, or per partition) and check results."""
        assert item.handler is not None
        default_key = self.context.asset_key if len(self.context.selected_asset_keys) == 1 else None
        for result in item.handler.get_reported_results():
            if isinstance(result, MaterializeResult):
                version = result.data_version.value if result.data_version else None
                self.events.append(
                    AssetMaterialization(
                        asset_key=result.asset_key or default_key,
                        partition=item.partition,
                        metadata=dict(result.metadata or {}),
                        tags={"dagster/data_version": version} if version else None,
                    )
                )
            elif isinstance(result, AssetCheckResult):
                self.events.append(result)

    def _read_dead_letters(self) -> None:
        """Items that failed every delivery: reported failed with their error."""
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.dead_letter_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return
            for message in messages:
                index = self._index_of(message.get("Body", ""))
                if index is None:  # another fan-out's: visible again for its owner
                    self.sqs.change_message_visibility(QueueUrl=self.dead_letter_queue_url,
                                                       ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=5)
                    continue
                item = self.items[index]
                if item.dead_lettered is None:
                    item.dead_lettered = time.monotonic()
                self.sqs.delete_message(QueueUrl=self.dead_letter_queue_url,
                                        ReceiptHandle=message["ReceiptHandle"])

    def _settle_dead_letters(self) -> None:
        """A dead-lettered item fails once no attempt of it is still running (SQS moves a message whose
        visibility ran out while an attempt was still at work: that attempt may yet succeed)."""
        now = time.monotonic()
        for item in self.items:
            if item.result.status != "pending" or item.dead_lettered is None:
                continue
            running = any(not attempt.closed for attempt in item.attempts.values())
            if running and now - item.dead_lettered < self.settings.fan_out_dead_letter_grace_s:
                continue
            self._finish(item, "failed", error=item.result.error or "failed every delivery (dead-letter queue)")

    def _index_of(self, body: str) -> int | None:
        try:
            params = json.loads(body)
            prefix = decode_param(params[DAGSTER_PIPES_MESSAGES_ENV_VAR])[KEY_PREFIX_PARAM]
        except (ValueError, KeyError, TypeError):
            return None
        head, _, index = str(prefix).rpartition("/")
        return int(index) if head == self.prefix and index.isdigit() and int(index) < len(self.items) else None

    def _finish(self, item: _Item, status: Literal["succeeded", "failed"], *, return_value: Any = None,
                error: str | None = None) -> None:
        item.result.status = status
        item.result.return_value = return_value
        if error:
            item.result.error = error
        self._unmarked.append(item)

    def _write_markers(self) -> None:
        """Markers of the items that ended, once their events were handed to Dagster: a re-execution
        skips an item only when its materializations were recorded."""
        for item in self._unmarked:
            result = item.result
            marker = {"status": result.status, "return_value": result.return_value, "error": result.error}
            self.s3.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{result.index}/{MARKER}",
                               Body=json.dumps(marker, default=str).encode())
            self.requests += 1
        self._unmarked = []

    def _resume(self) -> int:
        """Items a previous execution of this run finished: neither invoked nor materialized again."""
        resumed = 0
        for key in self._list():
            parts = key[len(self.prefix) + 1 :].split("/")
            if len(parts) == 2 and parts[1] == MARKER and parts[0].isdigit() and int(parts[0]) < len(self.items):
                marker = json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
                if marker.get("status") == "succeeded":
                    item = self.items[int(parts[0])]
                    item.result.status, item.result.return_value = "succeeded", marker.get("return_value")
                    item.submitted = True
                    resumed += 1
        if resumed:
            self.context.log.info(f"[pipeskit fan-out] resuming: {resumed} items finished before, skipped")
        return resumed

    def _progress(self, started: float) -> None:
        done = sum(i.result.status == "succeeded" for i in self.items)
        failed = sum(i.result.status == "failed" for i in self.items)
        pending = len(self.items) - done - failed
        elapsed = max(1e-6, time.monotonic() - started)
        self.context.log.info(
            f"[pipeskit fan-out] {done} done / {failed} failed / {pending} pending of {len(self.items)}, "
            f"{(done + failed) / elapsed:.1f} items/s, {self.duplicates} duplicates absorbed"
        )

    def _clean_up(self, keep_markers: bool) -> None:
        keys = [k for k in self._list() if not (keep_markers and k.endswith("/" + MARKER) and self._succeeded(k))]
        self.requests += delete_keys(self.s3, self.bucket, keys)

    def _succeeded(self, marker_key: str) -> bool:
        index = int(marker_key[len(self.prefix) + 1 :].split("/")[0])
        return self.items[index].result.status == "succeeded"


class _NoReader(PipesMessageReader):
    """What a fan-out item's message handler is told of its reader (messages come from the poller)."""

    @contextmanager
    def read_messages(self, handler: PipesMessageHandler) -> Iterator[PipesParams]:
        yield {}

    def no_messages_debug_text(self) -> str:
        return "Fan-out item: messages are read from its S3 prefix by the fan-out's poller."


def _run_key(context: OpExecutionContext | AssetExecutionContext) -> str:
    """The same for a run and its re-executions: the root run and the step."""
    run = context.run
    op_context = getattr(context, "op_execution_context", context)
    return f"{run.root_run_id or run.run_id}/{op_context.node_handle}"


def _time_window(context: Any, partition: str) -> dict[str, str] | None:
    try:
        definition = context.assets_def.partitions_def
        window = definition.time_window_for_partition_key(partition)
    except Exception:  # not time-partitioned  # noqa: BLE001
        return None
    return {"start": window.start.isoformat(), "end": window.end.isoformat()}


