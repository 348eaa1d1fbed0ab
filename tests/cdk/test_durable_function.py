"""Durable functions in the constructs: `DurableExecution`, the role's and the orchestrator's grants."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra.constants import LAMBDAS_DIR, LAYER_REQUIREMENTS
from pipeskit.cdk import DurableExecution, PipesDeployment
from pipeskit.errors import ConstructConfigurationError

from .conftest import assert_no_nag_findings

STACK = "durable-pipes"
YEAR_S = 366 * 24 * 3600


@pytest.fixture(scope="module")
def synthesized() -> tuple[cdk.Stack, PipesDeployment, Template]:
    app = cdk.App()
    stack = cdk.Stack(app, STACK)
    deployment = PipesDeployment(stack, "Pipes", layer_requirements=LAYER_REQUIREMENTS)
    deployment.add_function("Plain", code_dir=LAMBDAS_DIR / "hello", handler="handler.handler")
    deployment.add_function(
        "Yearly", code_dir=LAMBDAS_DIR / "hello", handler="handler.handler",
        durable=DurableExecution(execution_timeout_s=YEAR_S, retention_days=30),
    )  # fmt: skip
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    app.synth()
    return stack, deployment, Template.from_stack(stack)


def _function(template: Template, name: str) -> dict:
    return next(
        f["Properties"] for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"]["FunctionName"] == name
    )  # fmt: skip


def _role_statements(stack: cdk.Stack, template: Template, deployment: PipesDeployment, construct_id: str) -> list:
    role_id = stack.get_logical_id(deployment.functions[construct_id].role.node.default_child)
    return [
        s for p in template.find_resources("AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]  # fmt: skip


def test_the_durable_function_carries_its_durable_config(synthesized) -> None:
    _, _, template = synthesized
    assert _function(template, f"{STACK}-yearly")["DurableConfig"] == {
        "ExecutionTimeout": YEAR_S, "RetentionPeriodInDays": 30,
    }  # fmt: skip
    assert "DurableConfig" not in _function(template, f"{STACK}-plain")


def test_only_the_durable_role_may_checkpoint_and_only_its_own_executions(synthesized) -> None:
    stack, deployment, template = synthesized
    [checkpoint] = [
        s for s in _role_statements(stack, template, deployment, "Yearly")
        if "lambda:CheckpointDurableExecution" in s["Action"]
    ]  # fmt: skip
    assert sorted(checkpoint["Action"]) == ["lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"]
    assert json.dumps(checkpoint["Resource"]).endswith(f':function:{STACK}-yearly:*"]]}}')
    plain = json.dumps(_role_statements(stack, template, deployment, "Plain"))
    assert "DurableExecution" not in plain


def test_the_orchestrator_follows_the_durable_function_only(synthesized) -> None:
    stack, deployment, template = synthesized
    [policy] = template.find_resources("AWS::IAM::ManagedPolicy").values()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    follow = statements["FollowDurableExecutions"]
    assert set(follow["Action"]) == {
        "lambda:GetDurableExecution", "lambda:GetDurableExecutionHistory", "lambda:ListDurableExecutionsByFunction",
        "lambda:SendDurableExecutionCallbackSuccess", "lambda:SendDurableExecutionCallbackFailure",
        "lambda:SendDurableExecutionCallbackHeartbeat", "lambda:StopDurableExecution",
    }  # fmt: skip
    resources = json.dumps(follow["Resource"])
    assert stack.get_logical_id(deployment.functions["Yearly"].function.node.default_child) in resources
    assert stack.get_logical_id(deployment.functions["Plain"].function.node.default_child) not in resources
    assert "DurableExecution" not in json.dumps(statements["InvokeKitFunctions"])


def test_cdk_nag_reports_nothing_unsuppressed(synthesized) -> None:
    stack, _, _ = synthesized
    assert_no_nag_findings(stack)


@pytest.mark.parametrize(
    ("timeout_s", "retention_days", "named"),
    [(0, 14, "execution_timeout_s=0"), (YEAR_S + 1, 14, f"execution_timeout_s={YEAR_S + 1}"),
     (3600, 91, "retention_days=91")],
)  # fmt: skip
def test_a_durable_configuration_out_of_lambdas_range_is_refused_naming_it(timeout_s, retention_days, named) -> None:
    with pytest.raises(ConstructConfigurationError, match=named):
        DurableExecution(execution_timeout_s=timeout_s, retention_days=retention_days)
