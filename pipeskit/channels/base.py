"""The reader contract every channel's orchestrator end follows, the per-run end of a channel, and the
registry that finds a channel by its protocol name.

A reader is one end of a channel (its twin writer lives in ``pipeskit_lambda.channels``). It
contributes its own bootstrap params and invoke arguments, opens its own per-run session
(synchronous or asynchronous) and consumes its own part of the invoke response, so the client never
switches on the reader's type and a new channel never edits the client: a channel is registered
here by its protocol name (`register_channel`), its twin on the Lambda side with
``pipeskit_lambda.channels.register_writer``. A reader owns its dependencies (clients, settings,
budgets) and holds no state of any run: each run gets its own `ChannelSession`, so one reader serves
any number of concurrent runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from dagster import DagsterLogManager, PipesMessageHandler, PipesMessageReader
from dagster_pipes import PipesParams

from .._boto import DEFAULT_TARGET, AwsTarget
from ..cloudwatch_logs import InvocationLogReader
from ..errors import UnsupportedComponentError
from ..invocation import LambdaInvocation
from ..rate_limit import RateBudget
from ..settings import ClientSettings, LogsReaderSettings


@dataclass(frozen=True)
class EventFollowing:
    """How an asynchronous (``Event``) run is followed to its end.

    Attributes:
        timeout_s: the function's timeout.
        margin_s: no word from the function for ``timeout_s`` plus this long is a timeout.
        max_attempts: the attempts Lambda makes (its retries of a failed event, plus one).
        failure_record: the on-failure destination's record of a request id, once it arrived, else None.
        log: the step's Dagster log (ordinary lines of the log copy are forwarded there).
        attempt_ends: the attempts of a request id that ended so far, from the function's log
            (`pipeskit.attempt_ends`); none when its REPORT lines cannot be read.
        silence_note: why no REPORT line could be seen, added to a timeout's message ("" when it could).
    """

    timeout_s: float
    margin_s: float
    max_attempts: int
    failure_record: Callable[[str], dict[str, Any] | None]
    log: Any = None
    attempt_ends: Callable[[str], list[Any]] = lambda _request_id: []
    silence_note: str = ""


@dataclass
class DurableFollowing:
    """How a durable execution is followed to its end (`pipeskit.durable`).

    Attributes:
        describe: its state now (``GetDurableExecution``): a `pipeskit.durable.DurableExecution`.
        progress: says in the step's log what its history has new (``GetDurableExecutionHistory``).
        status_interval_s: how often both are read.
    """

    describe: Callable[[], Any]
    progress: Callable[[], Any]
    status_interval_s: float


class LambdaMessageReader(ABC):
    """Base of the kit's readers: one channel's orchestrator end, shared by every run.

    A subclass names its channel (``channel``, the protocol's name), says whether its runs can be
    asynchronous, and implements `messages_params` and `open_session`; `configured` builds it from a
    client's resolved settings, which is how the client's ``channel`` config finds it.
    """

    channel: ClassVar[str]
    supports_event_invocations: ClassVar[bool] = False
    """Whether runs on this channel can be asynchronous (``Event``: no response reaches the caller)."""

    @classmethod
    @abstractmethod
    def configured(
        cls, settings: ClientSettings, aws: AwsTarget = DEFAULT_TARGET, clients: Mapping[str, Any] | None = None
    ) -> LambdaMessageReader:
        """This channel's reader built from a client's resolved settings, its clients in ``aws``.

        Args:
            settings: the client's settings (deployment resources, read settings).
            aws: where the clients it creates point.
            clients: boto3 clients to use instead, by service name (``lambda``, ``logs``, ``s3``);
                a None value or a missing one is created in ``aws`` on first use.
        """

    @abstractmethod
    def open_session(self, *, asynchronous: bool = False) -> ChannelSession:
        """The per-run end of this channel, handed to Dagster's ``open_pipes_session``.

        Args:
            asynchronous: the run is an ``Event`` invocation (only when `supports_event_invocations`).
        """

    @abstractmethod
    def messages_params(self) -> PipesParams:
        """The ``DAGSTER_PIPES_MESSAGES`` params telling the Lambda side where to write."""

    def invoke_arguments(self) -> dict[str, Any]:
        """Extra keyword arguments for ``lambda.invoke`` that this channel needs."""
        return {}

    def log_reader(self) -> InvocationLogReader | None:
        """The reader of the function's log this channel reads back from, if any (it names log groups)."""
        return None

    @abstractmethod
    def no_messages_debug_text(self) -> str:
        """What Dagster says when no message arrived."""


class ChannelSession(PipesMessageReader, ABC):
    """One run's end of a channel: the Pipes message handler of that run, and nothing shared.

    Args:
        reader: the channel's reader.
    """

    def __init__(self, reader: LambdaMessageReader) -> None:
        self.reader = reader
        self._handler: PipesMessageHandler | None = None

    @contextmanager
    def read_messages(self, handler: PipesMessageHandler) -> Iterator[PipesParams]:
        self._handler = handler
        yield self.reader.messages_params()

    @property
    def handler(self) -> PipesMessageHandler:
        """This run's message handler (set when Dagster opens the session).

        Raises:
            UnsupportedComponentError: used outside its Pipes session.
        """
        if self._handler is None:
            raise UnsupportedComponentError(
                f"a {self.reader.channel} channel session was used outside its Pipes session: open it with "
                "dagster's open_pipes_session(message_reader=...) first"
            )
        return self._handler

    @abstractmethod
    def consume(self, invocation: LambdaInvocation, log: DagsterLogManager) -> None:
        """Deliver ``invocation``'s messages to this run's session; forward its other output to ``log``."""

    def follow_event(self, invocation: LambdaInvocation, following: EventFollowing) -> dict[str, Any] | None:
        """Follow an ``Event`` invocation to its end: None on success, else the remote error document.

        Raises:
            UnsupportedComponentError: the channel cannot follow asynchronous runs.
        """
        raise UnsupportedComponentError(
            f"the {self.reader.channel} channel cannot follow an asynchronous (Event) run: its messages travel "
            "in the invoke response. Use the S3 channel (channel='s3')."
        )

    def no_messages_debug_text(self) -> str:
        return self.reader.no_messages_debug_text()


class LogReadingMessageReader(LambdaMessageReader):
    """A reader that may read the invocation's lines back from CloudWatch Logs.

    Args:
        logs_client: boto3 CloudWatch Logs client; created on first use when needed, with botocore's
            back-off on throttling.
        lambda_client: boto3 Lambda client used to look up a function's log group.
        settings: read settings; defaults from ``PIPESKIT_*`` environment variables.
        budget: CloudWatch read budget; defaults to the one shared by the host's processes
            (``PIPESKIT_LOGS_BUDGET_SCOPE``).
        aws: where the clients it creates point (default: boto3's chain).
    """

    def __init__(
        self,
        *,
        logs_client: Any | None = None,
        lambda_client: Any | None = None,
        settings: LogsReaderSettings | None = None,
        budget: RateBudget | None = None,
        aws: AwsTarget = DEFAULT_TARGET,
    ) -> None:
        self.logs = InvocationLogReader(logs_client, lambda_client, settings, budget, aws=aws)

    def log_reader(self) -> InvocationLogReader:
        return self.logs

    @classmethod
    def configured(
        cls, settings: ClientSettings, aws: AwsTarget = DEFAULT_TARGET, clients: Mapping[str, Any] | None = None
    ) -> LambdaMessageReader:
        return cls(**cls.log_arguments(settings, aws, clients))

    @staticmethod
    def log_arguments(
        settings: ClientSettings, aws: AwsTarget, clients: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The keyword arguments of `LogReadingMessageReader` for a client's settings and clients (a
        subclass's `configured` adds its own)."""
        clients = clients or {}
        return {"settings": settings.logs, "aws": aws, "logs_client": clients.get("logs"),
                "lambda_client": clients.get("lambda")}  # fmt: skip

    def open_session(self, *, asynchronous: bool = False) -> ChannelSession:
        return LogReadingChannelSession(self)

    def deliver(self, invocation: LambdaInvocation, handler: PipesMessageHandler, log: DagsterLogManager) -> None:
        """Deliver the invocation's messages to ``handler`` (its log copy, unless the channel has them)."""
        self.logs.deliver(invocation, handler, log, invocation.envelope)


class LogReadingChannelSession(ChannelSession):
    """One run's end of a channel whose messages are in the response or the function's log."""

    reader: LogReadingMessageReader

    def consume(self, invocation: LambdaInvocation, log: DagsterLogManager) -> None:
        self.reader.deliver(invocation, self.handler, log)


# -- the registry --------------------------------------------------------------------------------

_READERS: dict[str, type[LambdaMessageReader]] = {}

R = TypeVar("R", bound=type[LambdaMessageReader])


def register_channel(reader: R) -> R:
    """Register a reader under its ``channel`` name (a class decorator).

    The client's ``channel`` config, fan-out and the CLI find the channel by that name; its twin
    writer is registered on the Lambda side under the same name
    (``pipeskit_lambda.channels.register_writer``).

    Raises:
        UnsupportedComponentError: another reader already has that name.
    """
    name = reader.channel
    known = _READERS.get(name)
    if known is not None and known is not reader:
        raise UnsupportedComponentError(
            f"the channel name {name!r} is taken by {known.__qualname__}; give {reader.__qualname__} another name"
        )
    _READERS[name] = reader
    return reader


def unregister_channel(name: str) -> None:
    """Forget the channel ``name`` (for tests that register a channel of their own)."""
    _READERS.pop(name, None)


def channel_names() -> tuple[str, ...]:
    """The registered channels' names, in registration order."""
    return tuple(_READERS)


def reader_class(name: str) -> type[LambdaMessageReader]:
    """The reader registered as ``name`` (case-insensitive: the launchpad spells ``RESPONSE``).

    Raises:
        UnsupportedComponentError: no channel has that name; the message lists the known ones.
    """
    reader = _READERS.get(name) or _READERS.get(name.lower())
    if reader is None:
        names = [repr(known) for known in _READERS]
        choices = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)
        raise UnsupportedComponentError(f"there is no channel {name!r}: the channel is {choices}")
    return reader
