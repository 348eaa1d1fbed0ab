"""Fan-out: many Pipes sessions from one asset, through the SQS work queue or asynchronous invokes.

Each item is its own Pipes session: its own context (for a single-run backfill, its own partition
key) and its own prefix in the messages bucket. Each attempt of an item ends with one object in the
fan-out's ends folder, its return value and last messages together (`pipeskit_lambda.protocol.
END_SUFFIX`); an attempt whose messages outgrow one upload announces itself there first, and its
chunks are followed as they come, by the S3 channel's own reader (`ChunkReader`). Each poll lists the
ends folder only, whose objects are deleted once read, and fetches the new ones side by side: its
cost follows what ended since the last poll, not the fan-out's size. SQS delivers at least once and
Lambda retries: for each item the first attempt that closes without an exception counts, every
other one is a duplicate absorbed (its messages but logs were held, so it never adds a
materialization). An item that fails every attempt lands in the dead-letter queue (or
the on-failure destination, for invokes) and is reported failed with its error; the deadline turns
what is still pending into failures. Markers of the finished items, one object per poll, make a
re-executed run skip them.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
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
    END_HEADER_KEY,
    END_SUFFIX,
    ENDS_PARAM,
    ITEM_KEY,
    KEY_PREFIX_PARAM,
    OPEN_SUFFIX,
    S3_CHANNEL,
)

from ._dagster import build_context_data
from .attempt_ends import EventTracking
from .aws_errors import aws_error
from .channels.chunks import AttemptChunks, ChunkReader, delete_keys, exception_text, list_keys
from .cloudwatch_logs import LogForwarder
from .errors import FanOutFailedError, InvalidFanOutError
from .failures import record_error
from .invoke import invoke_function
from .settings import DeploymentSettings, FanOutSettings, LambdaClientSettings

ENDS = "ends"
"""The fan-out's folder of attempt ends (and of announcements of attempts followed chunk by chunk)."""
DONE = "done"
"""The fan-out's folder of resume markers: one object per poll, listing the items that ended in it."""
_FOLLOW_MAX_PAUSE_S = 10.0
"""The longest pause between two listings of a followed item's chunks while none comes."""
_FETCHERS = 8
"""End objects fetched side by side."""
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
class _Item:
    result: ItemResult
    handler: PipesMessageHandler | None = None
    chunks: ChunkReader | None = None  # its prefix: its attempts' chunks and what they held
    following: set[str] = field(default_factory=set)  # attempts announced open, followed until they end
    look_at: float = 0.0  # when its followed attempts' chunks are listed next
    pause: float = 0.0  # between two listings: longer while nothing new comes
    reported: set[str] = field(default_factory=set)  # attempts whose failure is in the step's log
    counted: set[str] = field(default_factory=set)  # attempts counted (the one that counts, or a duplicate)
    partition: str | None = None
    submitted: bool = False  # by this execution (a resumed item is not: it ended before)
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
        transport: Literal["auto", "sqs", "invoke"],
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
        event: dict[str, Any] | None = None,
        qualifier: str | None = None,
    ) -> None:
        self.context = context
        self.function_name = function_name
        self.transport: Literal["auto", "sqs", "invoke"] = transport
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
        self.event = dict(event or {})  # the same members in every item's body, next to the item
        self.qualifier = qualifier
        key = json.dumps([run_key(context), function_name or self.queue_url, list(items)], default=str, sort_keys=True)
        self.prefix = f"{session_prefix.strip('/')}/fanout-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        partitioned = context.has_partition_key_range or context.has_partition_key
        partitions = set(context.partition_keys) if partitioned else set()
        self.items = [
            _Item(ItemResult(index, item), partition=str(item) if str(item) in partitions else None)
            for index, item in enumerate(items)
        ]
        self.duplicates = 0
        self.requests = 0
        self.events: list[AssetMaterialization | AssetCheckResult] = []  # not yet handed to the stream
        self._unmarked: list[_Item] = []  # ended items whose resume markers are not written yet
        self.streaming = True  # False under run(): the caller yields the events after it returns
        self._queue_terms: tuple[int | None, int | None] = (None, None)
        self._gap_timeout_s = channel.s3_settings.s3_gap_timeout_s
        self._following: dict[int, _Item] = {}  # items whose attempts announced chunks
        self._ends_seen: set[str] = set()  # objects of the ends folder looked at and not deleted yet
        self._ends_read: list[str] = []  # end objects read, deleted once their items' markers are written
        self._markers_written = 0
        self._heard = False  # an end object of this fan-out was seen
        self._first_sent: float | None = None
        self._silence_checked = False
        logs = channel.logs.settings
        self._forwarder = LogForwarder(context.log, "[pipeskit fan-out]", logs.forward_batch_bytes,
                                       logs.forward_batch_s)  # fmt: skip

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
        """The fan-out, yielding each item's events as it ends; returns the summary.

        Raises:
            LambdaInvokeError: an AWS call of the fan-out failed (refused, no connection, no region or
                credentials), said by `pipeskit.aws_errors.aws_error`.
        """
        try:
            return (yield from self._stream())
        except (ClientError, BotoCoreError) as error:
            raise aws_error(
                error, f"fanning out {len(self.items)} items ({self.transport})",
                nothing_done="The fan-out stopped; re-executing the run skips the items that finished.",
            ) from error  # fmt: skip

    def _stream(self) -> Generator[AssetMaterialization | AssetCheckResult, None, FanOutSummary]:
        if self.transport == "auto":
            self._choose_transport()
        if self.transport == "sqs" and not self.queue_url:
            raise InvalidFanOutError(
                "fan_out over SQS needs the work queue: pass queue_url=..., or set "
                f"{DeploymentSettings.env_var('work_queue_url')} (the stack's WorkQueueUrl output), or name the "
                "deployed stack with the client's stack_name"
            )
        if self.transport == "invoke" and not self.function_name:
            raise InvalidFanOutError(
                "fan_out with transport='invoke' needs function_name=...: the function each item is invoked on; "
                "nothing was sent"
            )
        started = time.monotonic()
        if self.transport == "invoke" and self._make_tracking is not None:
            try:
                self.tracking = self._make_tracking(self.function_name)
            except (ClientError, BotoCoreError) as error:  # the function's configuration, read before any invoke
                raise aws_error(
                    error, f"reading the configuration of {self.function_name}", function_name=self.function_name,
                    permission="lambda:GetFunctionConfiguration", nothing_done="Nothing was sent.",
                ) from error  # fmt: skip
        if self.transport == "sqs":
            self._queue_terms = self._read_queue_terms()
        resumed = self._resume()
        base = build_context_data(self.context, self.extras)
        pending = [item for item in self.items if item.result.status == "pending"]
        limit = self.max_concurrency or len(pending) or 1
        deadline = started + self.deadline_s if self.deadline_s else None
        last_progress = 0.0
        with ThreadPoolExecutor(max_workers=max(_FETCHERS, min(16, limit))) as pool:
            while True:
                open_items = [i for i in self.items if i.submitted and i.result.status == "pending"]
                room = limit - len(open_items)
                batch = [i for i in pending if not i.submitted][: max(0, room)]
                if batch:
                    self._submit(batch, base, pool)
                self._poll(pool)
                if self.transport == "sqs":
                    self._check_silence()
                if self.tracking is not None:
                    self._follow_invokes(self.tracking)
                self._forwarder.flush()  # the items' logs of this poll, before their events
                new_events, self.events = self.events, []
                yield from new_events  # resumed: Dagster has recorded them
                if self.streaming:
                    self._write_markers()
                self._delete_read_ends()
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

    def _choose_transport(self) -> None:
        """``auto``: invokes of the function for up to `fan_out_invoke_max_items` items, the work queue above
        (or without a function name); said in the step's log."""
        limit = self.settings.fan_out_invoke_max_items
        if self.function_name and len(self.items) <= limit:
            self.transport, how = "invoke", f"asynchronous invokes of {self.function_name}"
        else:
            self.transport, how = "sqs", f"the work queue {self.queue_url or '(not configured)'}"
        self.context.log.info(
            f"[pipeskit fan-out] {len(self.items)} items through {how} (transport='auto': invokes of function_name "
            f"for up to {limit} items, {FanOutSettings.env_var('fan_out_invoke_max_items')}, the work queue "
            "above; pass transport= to choose)"
        )

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
            ENDS_PARAM: f"{self.prefix}/{ENDS}/{item.result.index}",
        }
        return {DAGSTER_PIPES_CONTEXT_ENV_VAR: encode_param({"data": data}),
                DAGSTER_PIPES_MESSAGES_ENV_VAR: encode_param(messages)}

    def _submit(self, batch: list[_Item], base: dict[str, Any], pool: ThreadPoolExecutor) -> None:
        bodies = []
        self._first_sent = self._first_sent or time.monotonic()
        for item in batch:
            item.submitted = True
            bodies.append((item, json.dumps({**self.event, ITEM_KEY: item.result.item, **self._bootstrap(item, base)},
                                           default=str)))
        if self.transport == "sqs":  # batches of 10 (SQS's limit), sent side by side
            batches = [bodies[start : start + 10] for start in range(0, len(bodies), 10)]
            self.requests += sum(pool.map(self._send, batches))
        else:
            list(pool.map(lambda pair: self._invoke_event(*pair), bodies))

    def _send(self, batch: list[tuple[_Item, str]]) -> int:
        """One ``SendMessageBatch`` of up to 10 items; returns the requests made."""
        entries = [{"Id": str(item.result.index), "MessageBody": body} for item, body in batch]
        answer = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
        refused = answer.get("Failed") or []
        if refused:  # rare (an internal error): sent again, one by one
            for failure in refused:
                item, body = next(pair for pair in batch if str(pair[0].result.index) == failure.get("Id"))
                self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)
        return 1 + len(refused)

    def _invoke_event(self, item: _Item, body: str) -> None:
        """Queue one item's asynchronous invoke; a 429 backs off and is tried again (`invoke_function`)."""
        assert self.function_name is not None  # checked by stream()
        settings = self.invoke_settings
        invocation = invoke_function(
            self.invoke, self.function_name, body.encode(), invocation_type="Event", qualifier=self.qualifier,
            settings=settings,
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
                    f"the function returned [request id {rid}] but its end never reached "
                    f"s3://{self.bucket}/{self.prefix}/{ENDS}/ (its uploads were refused or lost); its "
                    f"log holds its messages: pipeskit logs {self.function_name} --request-id {rid}"
                ))  # fmt: skip
            elif tracking.ends is None:
                silence = (tracking.timeout_s + margin) * tracking.max_attempts + _RETRY_DELAYS_S
                if now - item.invoked_at > silence:
                    self._finish(item, "failed", error=(
                        f"Sandbox.Timedout: no word from request {rid} within {silence:.0f} s{tracking.silence_note}"
                    ))  # fmt: skip

    def _list(self, folder: str = "") -> list[str]:
        keys, requests = list_keys(self.s3, self.bucket, f"{self.prefix}/{folder}" if folder else self.prefix)
        self.requests += requests
        return keys

    def _poll(self, pool: ThreadPoolExecutor) -> None:
        """What ended since the last poll (the ends folder), and the chunks of the attempts announced open."""
        ended: list[str] = []
        ends_prefix = f"{self.prefix}/{ENDS}/"
        for key in self._list(ENDS):
            if key in self._ends_seen:
                continue
            self._ends_seen.add(key)
            self._heard = True
            if key.endswith(END_SUFFIX):
                ended.append(key)
                continue
            self._ends_read.append(key)
            located = self._attempt_of(key[len(ends_prefix) :].removesuffix(OPEN_SUFFIX))
            if located is not None and key.endswith(OPEN_SUFFIX) and located[0].result.status == "pending":
                located[0].following.add(located[1])
                located[0].look_at = 0.0
                self._following[located[0].result.index] = located[0]
        now = time.monotonic()
        for item in self._followed():  # attempts that announced chunks: one listing each, less often while quiet
            if now >= item.look_at:
                base = self.settings.fan_out_poll_interval_s
                item.pause = base if self._read_chunks(item) else min(_FOLLOW_MAX_PAUSE_S, max(base, item.pause * 2))
                item.look_at = now + item.pause
        for key, body in zip(ended, pool.map(self._fetch, ended), strict=True):
            self.requests += 1
            self._ends_read.append(key)
            for name, header, lines in _end_sections(body):
                located = self._attempt_of(name)
                if located is not None:
                    self._end(located[0], located[1], header, lines)

    def _attempt_of(self, name: str) -> tuple[_Item, str] | None:
        """The item and attempt folder of ``{index}.{attempt folder}``, if this execution sent that item."""
        index, _, attempt = name.partition(".")
        if not index.isdigit() or int(index) >= len(self.items) or not attempt.startswith(ATTEMPT_PREFIX):
            return None
        item = self.items[int(index)]
        return (item, attempt) if item.submitted else None  # else resumed: its old objects linger

    def _followed(self) -> list[_Item]:
        """The items whose attempts announced chunks and are still running (not every item: a poll's
        work follows what is running)."""
        self._following = {i: item for i, item in self._following.items()
                           if item.following and item.result.status == "pending"}  # fmt: skip
        return list(self._following.values())

    def _chunks(self, item: _Item) -> ChunkReader:
        """The item's chunk reader (made when first needed, dropped when the item ends: a pending item
        costs its result and a few flags)."""
        if item.chunks is None:
            item.chunks = ChunkReader(
                self.s3, self.bucket, f"{self.prefix}/{item.result.index}", functools.partial(self._deliver, item),
                gap_timeout_s=self._gap_timeout_s, hold=True,
            )  # fmt: skip
        return item.chunks

    def _read_chunks(self, item: _Item) -> int:
        """List the item's prefix and read its new chunks; returns how many."""
        chunks = self._chunks(item)
        before = chunks.requests
        read = chunks.poll()
        self.requests += chunks.requests - before
        return read

    def _deliver(self, item: _Item, message: dict[str, Any]) -> None:
        """A message of one of the item's attempts: its logs while it is pending (batched into the step's
        log, a warning or worse alone), the rest when the attempt is released. ``opened`` is not repeated
        per item: the progress lines tell."""
        method = message.get("method")
        if method == "log":
            if item.result.status == "pending":
                params = message.get("params") or {}
                line = f"item {item.result.index}: {params.get('message')}"
                self._forwarder.add_at(str(params.get("level", "")), line)
        elif method != "opened":
            if item.handler is None:
                item.handler = PipesMessageHandler(self.context, _NoReader())
            item.handler.handle_message(message)

    def _fetch(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def _end(self, item: _Item, name: str, header: dict[str, Any], lines: bytes) -> None:
        """One attempt of ``item`` ended: its chunks, then its end's messages; what became of it."""
        item.following.discard(name)
        if item.result.status != "pending":  # ended before: a duplicate delivery, or a retry
            item.result.attempts += 1
            returned = header.get("opened", True) and "result" in header
            if item.result.status == "succeeded" and returned and name not in item.counted:
                item.counted.add(name)
                self.duplicates += 1
            return
        chunks = self._chunks(item)
        attempt = chunks.attempt(name)
        if attempt.next_chunk <= int(header.get("chunks") or 0):  # chunks it uploaded before its end
            self._read_chunks(item)
        chunks.take(attempt, lines)
        item.result.attempts = len(chunks.attempts)
        request_id = str(header.get("request_id") or "") or None
        if not header.get("opened", True):
            self._never_opened(item, attempt, header, request_id)
        elif attempt.closed and not attempt.exception:
            item.result.request_id = request_id
            self._succeed(item, attempt, header.get("result"))
        elif attempt.exception:
            item.result.error = exception_text(attempt.exception)
            if self.transport == "sqs" and name not in item.reported:
                self._report_failed_attempt(item, attempt)

    def _never_opened(self, item: _Item, attempt: AttemptChunks, header: dict[str, Any],
                      request_id: str | None) -> None:  # fmt: skip
        """The handler ran for the item but never opened its Pipes session: said at once, with what it did."""
        where = f"request id {request_id}" if request_id else "its request id unknown"
        if header.get("log_group_name"):
            where += f", log {header['log_group_name']}/{header.get('log_stream_name', '')}"
        why = ("its handler never opened the Pipes session (open_dagster_pipes, or the pipes argument of "
               "pipes_handler), so nothing of the item reaches Dagster; open it in the handler")  # fmt: skip
        error = header.get("error")
        if error:  # it raised first: a failed attempt like any other
            attempt.closed, attempt.exception = True, {"name": error.get("name"), "message": error.get("message")}
            item.result.error = f"{exception_text(attempt.exception)} (before opening the Pipes session)"
            if self.transport == "sqs" and attempt.name not in item.reported:
                self._report_failed_attempt(item, attempt)
            return
        if item.result.status != "pending":
            return
        returned = json.dumps(header.get("result"), default=str)
        returned = returned if len(returned) <= 200 else returned[:200] + "…"
        message = f"the function returned {returned} for it [{where}] but {why}"
        self.context.log.error(f"[pipeskit fan-out] item {item.result.index} ({item.result.item!r}): {message}")
        self._finish(item, "failed", error=message)

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

    def _report_failed_attempt(self, item: _Item, attempt: AttemptChunks) -> None:
        """A failed SQS delivery of an item, in the step's log when it is seen: which attempt, the error,
        and what SQS does next."""
        assert item.chunks is not None
        item.reported.add(attempt.name)
        failed = sum(1 for a in item.chunks.attempts.values() if a.exception)
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

    def _succeed(self, item: _Item, attempt: AttemptChunks, value: Any) -> None:
        assert item.chunks is not None
        item.chunks.release(attempt)
        self._report(item)
        self._finish(item, "succeeded", return_value=value)
        item.counted.add(attempt.name)

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
            running = item.chunks is not None and any(not a.closed for a in item.chunks.attempts.values())
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
        item.handler, item.chunks, item.following = None, None, set()  # what it held is delivered or moot
        self._unmarked.append(item)

    def _write_markers(self) -> None:
        """Markers of the items that ended, once their events were handed to Dagster (a re-execution skips
        an item only when its materializations were recorded): one object for all of them."""
        if not self._unmarked:
            return
        markers = [{"index": item.result.index, "status": item.result.status, "return_value": item.result.return_value,
                    "error": item.result.error} for item in self._unmarked]  # fmt: skip
        self._markers_written += 1
        self.s3.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{DONE}/{self._markers_written:08d}.json",
                           Body=json.dumps(markers, default=str).encode())  # fmt: skip
        self.requests += 1
        self._unmarked = []

    def _delete_read_ends(self) -> None:
        """The end objects read, once their items' markers are written (streaming: just before): the next
        listing of the ends folder holds only what is new."""
        read, self._ends_read = self._ends_read, []
        self.requests += delete_keys(self.s3, self.bucket, read, keep_going=True)
        self._ends_seen.difference_update(read)

    def _resume(self) -> int:
        """Items a previous execution of this run finished: neither invoked nor materialized again."""
        resumed = 0
        for key in self._list(DONE):
            self._markers_written = max(self._markers_written, _marker_number(key))
            markers = json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
            self.requests += 1
            for marker in markers:
                index = marker.get("index")
                if marker.get("status") != "succeeded" or index not in range(len(self.items)):
                    continue
                item = self.items[index]
                if item.result.status != "succeeded":
                    item.result.status, item.result.return_value = "succeeded", marker.get("return_value")
                    resumed += 1
        if resumed:
            self.context.log.info(f"[pipeskit fan-out] resuming: {resumed} items finished before, skipped")
        return resumed

    def _check_silence(self) -> None:
        """Once, `fan_out_silence_s` after the first item was sent with no word from any: say why, from the
        work queue's depth and its consumers."""
        silence = self.settings.fan_out_silence_s
        if self._heard or self._silence_checked or self._first_sent is None:
            return
        if time.monotonic() - self._first_sent < silence:
            return
        self._silence_checked = True
        sent = sum(1 for item in self.items if item.submitted)
        try:
            attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=[
                "QueueArn", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"
            ]).get("Attributes", {})  # fmt: skip
        except Exception as error:  # noqa: BLE001 - the warning says what it could not read
            attributes = {"error": f"{type(error).__name__}: {error}"}
        waiting = int(attributes.get("ApproximateNumberOfMessages", 0) or 0)
        in_flight = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0) or 0)
        consumers = self._consumers(str(attributes.get("QueueArn", "")))
        head = (f"[pipeskit fan-out] {silence:g} s after the first of {sent} items was sent to {self.queue_url}, no "
                "item has opened a Pipes session")  # fmt: skip
        if "error" in attributes:
            detail = f"the queue's depth could not be read ({attributes['error']})"
        elif not consumers:
            detail = ("no function is mapped to the queue: connect one (WorkQueue.add_consumer(function) in the "
                      "constructs, or an event source mapping with ReportBatchItemFailures)")  # fmt: skip
        elif waiting >= sent:
            detail = (f"the items wait in the queue ({waiting} messages visible): its consumer {consumers} has not "
                      "taken them (disabled, throttled, or its reserved concurrency is 0?)")  # fmt: skip
        else:
            detail = (f"its consumer {consumers} took them off the queue ({waiting} visible, {in_flight} in flight) "
                      "but opened no Pipes session for them: run its handler behind the kit's Lambda side (the "
                      "entrypoint pipeskit_lambda.entrypoint.handler, as PipesFunction deploys it, or the "
                      "pipes_handler decorator) — a handler without it returns, and the items' messages are deleted "
                      "unrun")  # fmt: skip
        self.context.log.warning(f"{head}: {detail}")

    def _consumers(self, queue_arn: str) -> str:
        """The functions mapped to the work queue, with their mappings' states, or what kept them unknown."""
        if not queue_arn:
            return "(unknown)"
        try:
            mappings = self.invoke.list_event_source_mappings(EventSourceArn=queue_arn).get("EventSourceMappings", [])
        except Exception as error:  # noqa: BLE001 - the warning says what it could not read
            return f"(not known: listing the queue's event source mappings failed: {type(error).__name__}: {error})"
        return ", ".join(f"{m.get('FunctionArn', '').rsplit(':', 1)[-1]} ({m.get('State', '?')})" for m in mappings)

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
        done = f"{self.prefix}/{DONE}/"
        keys = [k for k in self._list() if not (keep_markers and k.startswith(done))]
        self.requests += delete_keys(self.s3, self.bucket, keys)


class _NoReader(PipesMessageReader):
    """What a fan-out item's message handler is told of its reader (messages come from the poller)."""

    @contextmanager
    def read_messages(self, handler: PipesMessageHandler) -> Iterator[PipesParams]:
        yield {}

    def no_messages_debug_text(self) -> str:
        return "Fan-out item: messages are read from its S3 prefix by the fan-out's poller."


def _end_sections(body: bytes) -> Iterator[tuple[str, dict[str, Any], bytes]]:
    """``(index.attempt, header, message lines)`` of each end in an end object (`END_SUFFIX`)."""
    marker = b'{"' + END_HEADER_KEY.encode() + b'"'
    name, header, lines = "", dict[str, Any](), list[bytes]()
    for line in body.split(b"\n"):
        if line.startswith(marker):
            if name:
                yield name, header, b"\n".join(lines)
            header = json.loads(line).get(END_HEADER_KEY) or {}
            name, lines = str(header.get("end") or ""), []
        else:
            lines.append(line)
    if name:
        yield name, header, b"\n".join(lines)


def _marker_number(key: str) -> int:
    name = key.rsplit("/", 1)[-1].removesuffix(".json")
    return int(name) if name.isdigit() else 0


def run_key(context: OpExecutionContext | AssetExecutionContext) -> str:
    """The same for a run and its re-executions: the root run and the step (``{root run id}/{step}``)."""
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


