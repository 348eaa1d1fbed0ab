"""The invoke payload: the user's event with the Pipes bootstrap merged in, checked before invoking.

Everything that cannot work is refused here, before Lambda is called, with an error naming the
offending value by its path (``event['rows'][3]``) and what to do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from dagster_pipes import DAGSTER_PIPES_CONTEXT_ENV_VAR, DAGSTER_PIPES_MESSAGES_ENV_VAR

from .errors import InvalidEventError, PayloadTooLargeError

BOOTSTRAP_KEYS = (DAGSTER_PIPES_CONTEXT_ENV_VAR, DAGSTER_PIPES_MESSAGES_ENV_VAR)
_JSON_SCALARS = (str, int, float, bool, type(None))


def _problem(value: Any, path: tuple[Any, ...]) -> tuple[tuple[Any, ...], str] | None:
    """The first value under ``value`` that JSON cannot carry faithfully: (its path, what it is).

    The path is a tuple of keys and indexes, formatted only when a problem is found.
    """
    if isinstance(value, _JSON_SCALARS):
        if isinstance(value, float) and not math.isfinite(value):
            return path, f"{value!r}, which JSON has no number for (NaN and infinities are not JSON)"
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return (*path, key), f"a key of type {type(key).__name__}; JSON object keys are strings"
            if not isinstance(item, _JSON_SCALARS) or isinstance(item, float):
                found = _problem(item, (*path, key))
                if found:
                    return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if not isinstance(item, _JSON_SCALARS) or isinstance(item, float):
                found = _problem(item, (*path, index))
                if found:
                    return found
        return None
    return path, f"a {type(value).__module__}.{type(value).__qualname__}, which JSON cannot carry"


def check_json(value: Any, name: str) -> None:
    """Refuse ``value`` unless it is plain JSON.

    Raises:
        InvalidEventError: naming the path of the first offending value.
    """
    found = _problem(value, ())
    if found:
        parts, what = found
        path = name + "".join(f"[{part!r}]" for part in parts)
        raise InvalidEventError(
            f"{path} is {what}. Nothing was invoked: pass only JSON values (str, int, finite float, bool, "
            "None, lists and dicts with string keys) — convert dates with .isoformat(), decimals with "
            "float() or str(), and pass large or binary data by reference (an S3 key)."
        )


def check_event(event: Any, function_name: str) -> bytes:
    """Refuse an event that cannot work; returns it encoded as JSON (`build_payload` reuses it).

    Raises:
        InvalidEventError: the event is not a mapping, holds a non-JSON value, or uses a key of the
            Pipes bootstrap.
    """
    if not isinstance(event, Mapping):
        raise InvalidEventError(
            f"the event for {function_name} is a {type(event).__name__}; Pipes on Lambda merges the bootstrap "
            "into the event, so it must be a mapping (a dict of JSON values). Wrap the value, e.g. "
            "event={'items': [...]}. Nothing was invoked."
        )
    clashing = sorted(key for key in BOOTSTRAP_KEYS if key in event)
    if clashing:
        raise InvalidEventError(
            f"the event for {function_name} uses {', '.join(clashing)}, the key(s) of the Pipes bootstrap "
            "the client adds; rename them in your event. Nothing was invoked."
        )
    check_json(event, "event")
    return json.dumps(event, allow_nan=False).encode()


def build_payload(
    event: Mapping[str, Any] | bytes, bootstrap: Mapping[str, str], function_name: str, limit_bytes: int
) -> bytes:
    """The JSON invoke payload ``{**event, **bootstrap}`` of a checked event (`check_event`).

    Args:
        event: the event, or its JSON from `check_event` (not encoded a second time: the bootstrap's
            members are appended to its object; `check_event` made sure no key clashes).

    Raises:
        PayloadTooLargeError: the payload exceeds ``limit_bytes``.
    """
    encoded = event if isinstance(event, bytes) else json.dumps(event, allow_nan=False).encode()
    members = json.dumps(dict(bootstrap)).encode()[1:]  # '"key": "value", ...}'
    payload = b"{" + members if encoded.strip() == b"{}" else encoded.rstrip()[:-1] + b", " + members
    if len(payload) > limit_bytes:
        raise PayloadTooLargeError(
            f"the invoke payload for {function_name} is {len(payload):,} bytes, above Lambda's "
            f"{limit_bytes:,}-byte request limit. Nothing was invoked. Pass large inputs by reference (e.g. an "
            "S3 key in the event); a large Pipes context goes through S3 when PIPESKIT_CONTEXT_BUCKET is set "
            "(the stack's ContextBucketName output)."
        )
    return payload
