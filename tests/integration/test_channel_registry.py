"""A channel of one's own: registered by name on both ends, used through the client's ``channel`` config,
with no change to the client or the runner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dagster import DagsterLogManager, PipesMessageHandler
from dagster_pipes import PipesParams

from pipeskit import PipesLambdaClient, UnsupportedComponentError
from pipeskit.channels import LogReadingMessageReader, channel_names, reader_class, register_channel, unregister_channel
from pipeskit.invocation import LambdaInvocation
from pipeskit_lambda.protocol import CHANNEL_PARAM, STDERR, STDIO_PARAM

from .conftest import run_asset


class ToyReader(LogReadingMessageReader):
    """Twin of ``handlers/toy_channel.py``'s writer: the messages come back reversed in the envelope."""

    channel = "toy"
    delivered: list[int] = []

    def messages_params(self) -> PipesParams:
        return {STDIO_PARAM: STDERR, CHANNEL_PARAM: self.channel}

    def deliver(self, invocation: LambdaInvocation, handler: PipesMessageHandler, log: DagsterLogManager) -> None:
        envelope: Any = invocation.envelope
        if envelope is None or "toy_reversed" not in envelope:  # failed: the copy in the log
            super().deliver(invocation, handler, log)
            return
        messages = list(reversed(envelope["toy_reversed"]))
        for message in messages:
            handler.handle_message(message)
        ToyReader.delivered.append(len(messages))

    def no_messages_debug_text(self) -> str:
        return "Expected the toy channel's reversed messages in the envelope."


@pytest.fixture
def toy_channel() -> Iterator[type[ToyReader]]:
    register_channel(ToyReader)
    ToyReader.delivered = []
    try:
        yield ToyReader
    finally:
        unregister_channel(ToyReader.channel)


def test_a_registered_channel_is_found_by_its_name_on_both_ends(toy_channel, local_aws, handler_function,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in local_aws.env().items():  # the clients the configured client creates: the local AWS
        monkeypatch.setenv(name, value)
    function = handler_function("toy_channel")
    client = PipesLambdaClient(channel="toy")
    assert isinstance(client.message_reader, ToyReader)
    run = run_asset(client, function, {"messages": 5})
    assert run.error is None
    assert list(run.completed.get_custom_messages()) == [{"n": n} for n in range(5)], "in the order reported"
    assert toy_channel.delivered == [8], "opened, 5 messages, the materialization and closed, from its envelope key"
    assert run.metadata()["sent"].value == 5


def test_the_built_in_channels_are_registered_in_the_protocols_order() -> None:
    assert channel_names()[:3] == ("response", "logs", "s3")
    assert reader_class("LOGS") is reader_class("logs"), "the launchpad spells the names in capitals"


def test_an_unknown_channel_is_refused_listing_the_registered_ones(toy_channel) -> None:
    with pytest.raises(UnsupportedComponentError, match=r"'response', 'logs', 's3' or 'toy'"):
        PipesLambdaClient(channel="sqs")


def test_a_name_cannot_be_taken_twice(toy_channel) -> None:
    class Impostor(ToyReader):
        pass

    with pytest.raises(UnsupportedComponentError, match="taken by ToyReader"):
        register_channel(Impostor)


def test_a_channel_that_cannot_follow_event_runs_is_refused_before_invoking(toy_channel) -> None:
    client = PipesLambdaClient(channel="toy", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    assert not client.message_reader.supports_event_invocations
    run = run_asset(client, "never-invoked", {}, invocation_type="Event")
    assert isinstance(run.error, UnsupportedComponentError)
    assert "asynchronous (Event) run of never-invoked" in str(run.error) and "Nothing was invoked" in str(run.error)
