"""The S3 channel's chunk layout and its S3 calls, written once for every follower of it (a run's session,
fan-out items).

A session's chunks are ``{prefix}/{n}.json`` (dagster-pipes' own ``PipesS3MessageWriter``) or
``{prefix}/attempt-{token}/{n}.json`` (the kit's writer, one folder per attempt of an invocation),
``n`` counting from 1; each chunk is JSON lines, one Pipes message per line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


DELETE_BATCH = 1000
"""Keys per ``DeleteObjects`` request (S3's limit)."""


def probe_prefix(client: Any, bucket: str, prefix: str) -> None:
    """One ``ListObjectsV2`` of at most one key under ``prefix/``: whether the bucket exists and may be listed.

    Raises:
        botocore.exceptions.ClientError: what S3 answered (``NoSuchBucket``, ``AccessDenied``, ...).
    """
    client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/", MaxKeys=1)


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
