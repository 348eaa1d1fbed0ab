"""A channel of the user's own, Lambda side: the ``toy`` writer returns the messages in the envelope in
reverse order under ``toy_reversed`` (its twin reader puts them back in order). Registered when the
function's code is imported, before the kit's entrypoint looks the writer up."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster_pipes import PipesMappingParamsLoader, PipesParams, open_dagster_pipes

from pipeskit_lambda import LambdaMessageWriter, register_writer
from pipeskit_lambda.channels import LogLineChannel


@register_writer
class ToyWriter(LambdaMessageWriter):
    channel = "toy"

    def __init__(self) -> None:
        super().__init__()
        self._kept: list[str] = []

    @contextmanager
    def open(self, params: PipesParams) -> Iterator[LogLineChannel]:
        yield LogLineChannel(kept=self._kept)

    def finish(self, result: Any, context: Any) -> Any:
        envelope = self._envelope(result, context)
        envelope["toy_reversed"] = [json.loads(line) for line in reversed(self._kept)]  # type: ignore[typeddict-unknown-key]
        return envelope


def handler(event, _context):
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        for n in range(event["messages"]):
            pipes.report_custom_message({"n": n})
        pipes.report_asset_materialization(metadata={"sent": event["messages"]})
    return {"sent": event["messages"]}
