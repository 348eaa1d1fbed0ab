"""The S3 channel's chunk layout and its S3 calls, written once for every follower of it (a run's session,
fan-out items).

A session's chunks are ``{prefix}/{n}.json`` (dagster-pipes' own ``PipesS3MessageWriter``) or
``{prefix}/attempt-{token}/{n}.json`` (the kit's writer, one folder per attempt of an invocation),
``n`` counting from 1; each chunk is JSON lines, one Pipes message per line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeskit_lambda.protocol import ATTEMPT_PREFIX

from ..message_lines import Message, MessageScanner, Text, Unreadable

CHUNK_SUFFIX = ".json"


@dataclass(frozen=True)
class ChunkKey:
    """Where a chunk stands in its session: its attempt's folder (``""``: none) and its number."""

    attempt: str
    number: int


def chunk_key(relative: str) -> ChunkKey | None:
    """The chunk a key names, relative to its session's prefix (``attempt-x/3.json``, ``3.json``).

    Returns:
        None for any other object (a result, a marker, a folder that is not an attempt's).
    """
    folder, _, name = relative.rpartition("/")
    number = name[: -len(CHUNK_SUFFIX)] if name.endswith(CHUNK_SUFFIX) else ""
    if not number.isdigit() or "/" in folder or (folder and not folder.startswith(ATTEMPT_PREFIX)):
        return None
    return ChunkKey(folder, int(number))


def chunk_messages(body: bytes, skipped: list[Text | Unreadable] | None = None) -> list[dict[str, Any]]:
    """The Pipes messages of one chunk (JSON lines), in order.

    A line that is not a whole message (a torn fragment, text) costs itself only: it is left out,
    and handed to ``skipped`` when given, so the caller can say so.
    """
    messages = []
    scanner = MessageScanner()
    for line in body.decode("utf-8", errors="replace").splitlines():
        for found in scanner.feed(line):
            if isinstance(found, Message):
                messages.append(found.message)
            elif skipped is not None:
                skipped.append(found)
    if skipped is not None:
        skipped.extend(scanner.close())
    return messages


def exception_message(exception: dict[str, Any]) -> str:
    """The message of a Pipes exception (a ``closed`` message's) without the type name dagster-pipes puts
    in front of it (``RuntimeError: …``) and without its trailing newline."""
    name = str(exception.get("name") or "")
    message = str(exception.get("message") or "").strip()
    return message[len(name) + 2 :] if name and message.startswith(f"{name}: ") else message


def exception_text(exception: dict[str, Any]) -> str:
    """``Type: message`` of a Pipes exception, the type named once."""
    name, message = exception.get("name"), exception_message(exception)
    return f"{name}: {message}" if name else message


def closing(message: dict[str, Any]) -> tuple[bool, dict[str, Any] | None]:
    """``(True, exception or None)`` for the session's ``closed`` message, else ``(False, None)``."""
    if message.get("method") != "closed":
        return False, None
    return True, (message.get("params") or {}).get("exception")


@dataclass
class AttemptChunks:
    """What was read of one attempt's chunks (``''``: dagster-pipes' writer, no attempt folder).

    A held reader keeps an attempt's messages but its logs (``held``) until it is known to be the one
    that counts (it closed without an exception, or it was the last one): Lambda may retry a failed
    event and SQS deliver twice, and a retry must never add a second materialization.
    """

    name: str
    next_chunk: int = 1
    delivered: int = 0
    closed: bool = False
    exception: dict[str, Any] | None = None
    gap_since: float | None = None
    held: list[dict[str, Any]] = field(default_factory=list)


class ChunkReader:
    """One session's chunks under its prefix, read in order, attempt by attempt: the one reading of the
    S3 channel's layout, for a run's session and for each fan-out item.

    Args:
        client: a boto3 S3 client.
        bucket: the messages bucket.
        prefix: the session's prefix.
        handle: what a delivered message goes to (the session's message handler).
        gap_timeout_s: how long a missing chunk may lag behind the next before it is named lost.
        hold: keep each attempt's messages but its logs in ``held`` until `release`.
    """

    def __init__(self, client: Any, bucket: str, prefix: str, handle: Callable[[dict[str, Any]], None], *,
                 gap_timeout_s: float, hold: bool = False) -> None:  # fmt: skip
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.handle = handle
        self.gap_timeout_s = gap_timeout_s
        self.hold = hold
        self.attempts: dict[str, AttemptChunks] = {}
        self.keys_read: list[str] = []
        self.lost: list[str] = []
        self.skipped: list[Text | Unreadable] = []
        self.requests = 0

    def attempt(self, name: str) -> AttemptChunks:
        """The attempt whose chunks are in folder ``name`` (created on first sight)."""
        found = self.attempts.get(name)
        if found is None:
            found = self.attempts[name] = AttemptChunks(name)
        return found

    def list(self) -> list[str]:
        """Every key under the session's prefix."""
        keys, requests = list_keys(self.client, self.bucket, self.prefix)
        self.requests += requests
        return keys

    def poll(self) -> int:
        """List the prefix and deliver every new chunk in order; returns how many chunks were read."""
        by_attempt: dict[str, dict[int, str]] = {}
        for key in self.list():
            chunk = chunk_key(key[len(self.prefix) + 1 :])
            if chunk is not None:
                by_attempt.setdefault(chunk.attempt, {})[chunk.number] = key
        return sum(self.read(self.attempt(folder), chunks) for folder, chunks in by_attempt.items())

    def key(self, attempt: AttemptChunks, number: int) -> str:
        """The key of chunk ``number`` of ``attempt``."""
        return f"{self.prefix}/{attempt.name + '/' if attempt.name else ''}{number}{CHUNK_SUFFIX}"

    def read(self, attempt: AttemptChunks, chunks: dict[int, str]) -> int:
        """Deliver ``attempt``'s chunks from its next one on, while they follow each other; a chunk missing
        behind a later one for longer than the gap timeout is named lost and passed. Returns how many
        chunks were read."""
        read = 0
        while True:
            key = chunks.get(attempt.next_chunk)
            if key is None:
                later = [n for n in chunks if n > attempt.next_chunk]
                if not later:
                    attempt.gap_since = None
                    return read
                now = time.monotonic()
                attempt.gap_since = attempt.gap_since or now
                if now - attempt.gap_since < self.gap_timeout_s:
                    return read
                self.lost.append(self.key(attempt, attempt.next_chunk))
                attempt.next_chunk += 1
                attempt.gap_since = None
                continue
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            self.requests += 1
            self.keys_read.append(key)
            self.take(attempt, body)
            read += 1

    def take(self, attempt: AttemptChunks, body: bytes) -> None:
        """The messages of ``attempt``'s next chunk (``body``): delivered, or held."""
        for message in chunk_messages(body, self.skipped):
            if self.hold and message.get("method") != "log":
                attempt.held.append(message)
            else:
                self.handle(message)
            attempt.delivered += 1
            closed, exception = closing(message)
            if closed:
                attempt.closed, attempt.exception = True, exception
        attempt.next_chunk += 1

    def release(self, attempt: AttemptChunks) -> None:
        """Deliver what ``attempt`` held: it is the attempt that counts."""
        held, attempt.held = attempt.held, []
        for message in held:
            self.handle(message)

    def any_closed(self) -> bool:
        """Whether an attempt's ``closed`` was read."""
        return any(a.closed for a in self.attempts.values())


DELETE_BATCH = 1000
"""Keys per ``DeleteObjects`` request (S3's limit)."""


def probe_prefix(client: Any, bucket: str, prefix: str) -> bool:
    """One ``ListObjectsV2`` of at most one key under ``prefix/``: whether the bucket exists and may be listed.

    Returns:
        Whether any object is under ``prefix/``.

    Raises:
        botocore.exceptions.ClientError: what S3 answered (``NoSuchBucket``, ``AccessDenied``, ...).
    """
    return bool(client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/", MaxKeys=1).get("KeyCount"))


def list_keys(client: Any, bucket: str, prefix: str) -> tuple[list[str], int]:
    """Every key under ``prefix/`` (``ListObjectsV2``, following continuation tokens).

    Returns:
        The keys, and the number of requests made.
    """
    keys: list[str] = []
    token: str | None = None
    requests = 0
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix.rstrip("/") + "/"}
        if token:
            kwargs["ContinuationToken"] = token
        page = client.list_objects_v2(**kwargs)
        requests += 1
        keys += [item["Key"] for item in page.get("Contents", [])]
        token = page.get("NextContinuationToken")
        if not token:
            return keys, requests


def delete_keys(client: Any, bucket: str, keys: Sequence[str], *, keep_going: bool = False) -> int:
    """Delete ``keys`` in batches of `DELETE_BATCH` (``DeleteObjects``, quiet).

    Args:
        keep_going: a refused batch does not stop the others (cleaning up must never hide a run's outcome).

    Returns:
        The number of requests made.
    """
    requests = 0
    for start in range(0, len(keys), DELETE_BATCH):
        batch = [{"Key": key} for key in keys[start : start + DELETE_BATCH]]
        try:
            client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            requests += 1
        except Exception:
            if not keep_going:
                raise
    return requests
