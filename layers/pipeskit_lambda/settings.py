"""The kit's one settings mechanism, shared by the Lambda side, the orchestrator and the local AWS.

A settings class is a frozen dataclass deriving from `Settings`: typed fields with their defaults in
code, overridable by environment variables with one prefix per class (``PIPESKIT_…`` or
``PIPESKIT_LOCAL_…``) and by keyword arguments (constructor, CLI flags). Values are parsed by the
field's type — booleans accept ``true/false/1/0`` — and validated against the bounds or allowed values
declared with `setting`; a bad value raises `SettingsError` naming the variable, the value and what
is allowed.

It lives in ``pipeskit_lambda`` (standard library only) so the Lambda side can use it from the pipes
layer; the orchestrator and the local AWS import it from here.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

from .errors import SettingsError
from .protocol import DEFAULT_RESPONSE_BUDGET_BYTES, SYNC_PAYLOAD_LIMIT_BYTES

S = TypeVar("S", bound="Settings")

_TRUE = ("true", "1")
_FALSE = ("false", "0")


def setting(
    default: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    allowed: tuple[Any, ...] | None = None,
    doc: str = "",
) -> Any:
    """Declare a settings field with its default and its constraints.

    Args:
        default: the value in code.
        minimum: smallest accepted value (numbers).
        maximum: largest accepted value (numbers).
        allowed: the accepted values (``Literal`` fields list theirs by themselves).
        doc: one line for generated documentation.

    Returns:
        A dataclass field.
    """
    metadata = {"minimum": minimum, "maximum": maximum, "allowed": allowed, "doc": doc}
    if isinstance(default, (list, dict, set)):
        raise TypeError("settings defaults must be immutable (use a tuple)")
    return dataclasses.field(default=default, metadata=metadata)


_CURRENT: dict[tuple[type, tuple[str | None, ...]], Any] = {}


@functools.cache
def _env_names(cls: type[Settings]) -> tuple[str, ...]:
    return tuple(cls.env_vars().values())


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of every settings class of the kit.

    Subclasses are frozen dataclasses and set `env_prefix`; field ``name`` is read from the
    environment variable ``<env_prefix><NAME>``.
    """

    env_prefix: ClassVar[str] = "PIPESKIT_"

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            problem = _check(hints[field.name], field, value)
            if problem:
                raise SettingsError(
                    f"{self.env_var(field.name)}={value!r} is not valid: {problem}. "
                    f"Set it to an allowed value, or unset it for the default ({field.default!r})."
                )

    @classmethod
    def env_var(cls, field_name: str) -> str:
        """The environment variable that overrides ``field_name``."""
        return cls.env_prefix + field_name.upper()

    @classmethod
    def env_vars(cls) -> dict[str, str]:
        """Every field name mapped to its environment variable."""
        return {f.name: cls.env_var(f.name) for f in dataclasses.fields(cls)}

    @classmethod
    def from_env(
        cls: type[S],
        environ: Mapping[str, str] | None = None,
        *,
        sources: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> S:
        """Defaults in code, then the environment, then ``overrides`` (``None`` values are ignored).

        Args:
            environ: the environment to read (``os.environ`` when omitted).
            sources: how an error names an override, by field name, e.g. ``{"port": "--port"}`` for
                a CLI flag; an override not named here is named by its environment variable.
            **overrides: field values that win over the environment, e.g. from CLI flags.

        Returns:
            The validated settings.

        Raises:
            SettingsError: a variable does not parse as its field's type or is out of bounds; an
                override named in ``sources`` that is out of bounds is named by its source.
        """
        environ = os.environ if environ is None else environ
        hints = _hints(cls)
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            name = cls.env_var(field.name)
            raw = environ.get(name)
            if raw is not None:
                values[field.name] = parse_value(hints[field.name], raw, name)
        given = {k: v for k, v in overrides.items() if v is not None}
        for name, source in (sources or {}).items():
            if name in given:
                problem = _check(hints[name], _field(cls, name), given[name])
                if problem:
                    raise SettingsError(
                        f"{source} {given[name]!r} is not valid: {problem}. Pass an allowed value, or leave "
                        f"{source} out for the default."
                    )
        values.update(given)
        return cls(**values)

    @classmethod
    def current(cls: type[S]) -> S:
        """`from_env` of the process's environment, built once per distinct value of its variables.

        For paths run on every invocation: a Lambda function's variables are fixed for its execution
        environment, so the settings are parsed and checked once, not per invocation.
        """
        key = (cls, tuple(os.environ.get(name) for name in _env_names(cls)))
        found = _CURRENT.get(key)
        if found is None:
            found = _CURRENT[key] = cls.from_env()
        return found  # type: ignore[return-value]

    @classmethod
    def from_mapping(cls: type[S], values: Mapping[str, Any], *, source: str) -> S:
        """Settings from a mapping of field names (e.g. a JSON config), strings parsed as from the env.

        Args:
            values: field name → value; strings are parsed, other values are taken as they are.
            source: how to name a setting in errors, ``{source}{name}`` (e.g. ``"pipeskit:"``).

        Raises:
            SettingsError: an unknown name, or a value that does not parse or is out of bounds.
        """
        hints = _hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(f"unknown settings {unknown} in {source or 'settings'}; known: {sorted(known)}")
        parsed: dict[str, Any] = {}
        for name, value in values.items():
            if isinstance(value, str):
                value = parse_value(hints[name], value, f"{source}{name}")
            elif hints[name] is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            problem = _check(hints[name], _field(cls, name), value)
            if problem:
                raise SettingsError(f"{source}{name}={value!r} is not valid: {problem}")
            parsed[name] = value
        return cls(**parsed)

    def replace(self: S, **changes: Any) -> S:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _field(cls: type, name: str) -> dataclasses.Field[Any]:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def _describe(hint: Any) -> str:
    if get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(hint))
    if hint is bool:
        return "one of true, false, 1, 0"
    if get_origin(hint) is tuple:
        return "comma-separated numbers"
    return f"a {getattr(hint, '__name__', str(hint))}"


def parse_value(hint: Any, raw: str, name: str) -> Any:
    """Parse ``raw`` (an environment variable's text) as ``hint``.

    Raises:
        SettingsError: naming ``name``, the value and what it must be.
    """
    text = raw.strip()
    try:
        if get_origin(hint) in (Union, types.UnionType):
            inner = [a for a in get_args(hint) if a is not type(None)]
            return None if text == "" else parse_value(inner[0], raw, name)
        if hint is bool:
            lowered = text.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError(raw)
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
        if hint is Path:
            return Path(text).expanduser()
        if get_origin(hint) is tuple:
            return tuple(float(part) for part in text.split(",") if part.strip())
        if get_origin(hint) is Literal:
            if text not in get_args(hint):
                raise ValueError(raw)
            return text
        return raw
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not valid: it must be {_describe(hint)}") from None


def _check(hint: Any, field: dataclasses.Field[Any], value: Any) -> str | None:
    """What is wrong with ``value`` for ``field``, or None."""
    meta = field.metadata
    allowed = meta.get("allowed") or (get_args(hint) if get_origin(hint) is Literal else None)
    if allowed and value not in allowed:
        return "allowed values are " + ", ".join(repr(a) for a in allowed)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = meta.get("minimum"), meta.get("maximum")
        span = f" (allowed: {low} to {high})" if low is not None and high is not None else ""
        if low is not None and value < low:
            return f"the minimum is {low}{span}"
        if high is not None and value > high:
            return f"the maximum is {high}{span}"
    return None


@dataclasses.dataclass(frozen=True)
class FunctionSettings(Settings):
    """Settings of the Lambda side, read from the function's environment.

    Attributes:
        handler: the user's ``module.function`` run by the kit's entrypoint
            (``PIPESKIT_HANDLER``, set by the kit's constructs and by ``pipeskit adopt``).
        response_budget_bytes: largest response envelope before the messages go to the function's
            log instead (``PIPESKIT_RESPONSE_BUDGET_BYTES``).
        response_output_bytes: ordinary output (print, logging) the response channel keeps for the
            envelope, which forwards it to Dagster; beyond it, lines are only in the function's log
            (``PIPESKIT_RESPONSE_OUTPUT_BYTES``; 0 keeps none).
        s3_flush_interval_s: the S3 channel uploads what it holds at least this often
            (``PIPESKIT_S3_FLUSH_INTERVAL_S``).
        s3_chunk_bytes: the S3 channel uploads a chunk as soon as this much is waiting.
    """

    handler: str = setting("", doc="the user handler behind the kit's entrypoint")
    response_budget_bytes: int = setting(
        DEFAULT_RESPONSE_BUDGET_BYTES,
        minimum=1024,
        maximum=SYNC_PAYLOAD_LIMIT_BYTES,
        doc="largest response envelope before messages spill to the log",
    )
    response_output_bytes: int = setting(
        8 * 1024 * 1024, minimum=0, doc="ordinary output the response channel carries to Dagster at most (0: none)"
    )
    s3_flush_interval_s: float = setting(1.0, minimum=0.05, doc="the S3 channel uploads a chunk at least this often")
    s3_chunk_bytes: int = setting(1024 * 1024, minimum=1024, doc="the S3 channel uploads a chunk when this much waits")

