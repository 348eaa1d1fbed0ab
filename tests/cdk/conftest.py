"""Synthesize the kit's app once per test session: a dev and a prod stack, cdk-nag attached."""

from __future__ import annotations

import json
from dataclasses import dataclass

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks

from infra.constants import PROJECT_DIR
from infra.settings import StackSettings
from infra.stack import PipesKitStack


@dataclass(frozen=True)
class Synthesized:
    settings: StackSettings
    stack: PipesKitStack
    template: Template
    annotations: Annotations


@pytest.fixture(scope="session")
def cdk_context() -> dict:
    """The context of the repository's own cdk.json, as ``cdk synth`` would pass it."""
    return json.loads((PROJECT_DIR / "cdk.json").read_text())["context"]


@pytest.fixture(scope="session")
def synthesized(cdk_context: dict) -> dict[str, Synthesized]:
    app = cdk.App(context=cdk_context)
    dev = StackSettings.from_context(app.node.try_get_context)
    prod = StackSettings(**{**dev.__dict__, "stage": "prod"})
    stacks = {s.stage: (s, PipesKitStack(app, s.stack_name, settings=s)) for s in (dev, prod)}
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    app.synth()  # once; Template/Annotations below read the cached assembly
    return {
        stage: Synthesized(settings, stack, Template.from_stack(stack), Annotations.from_stack(stack))
        for stage, (settings, stack) in stacks.items()
    }


@pytest.fixture(scope="session")
def dev(synthesized: dict[str, Synthesized]) -> Synthesized:
    return synthesized["dev"]


@pytest.fixture(scope="session")
def prod(synthesized: dict[str, Synthesized]) -> Synthesized:
    return synthesized["prod"]


def assert_no_nag_findings(stack: cdk.Stack) -> None:
    """cdk-nag (AwsSolutions) left no error and no warning on ``stack`` (suppressed findings are not reported)."""
    annotations = Annotations.from_stack(stack)
    for found in (annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*")),
                  annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*"))):  # fmt: skip
        assert found == [], "\n".join(str(e.entry.data) for e in found)
