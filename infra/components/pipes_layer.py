"""The pipes layer as a CDK construct."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from layers.build import LayerBuildSettings, build_layer

LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_12


class PipesLayer(Construct):
    """A Lambda layer carrying ``dagster-pipes``, Powertools and the kit's ``pipeskit_lambda``.

    The zip is built (or taken from the cache) at synth time by `layers.build`, without Docker.

    Args:
        scope: parent construct.
        construct_id: construct id.
        build_settings: how the layer zip is built; defaults target Python 3.12 on x86_64.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, build_settings: LayerBuildSettings | None = None
    ) -> None:
        super().__init__(scope, construct_id)
        zip_path = build_layer(build_settings)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=lambda_.Code.from_asset(str(zip_path)),
            compatible_runtimes=[LAMBDA_RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="dagster-pipes, aws-lambda-powertools and pipeskit_lambda (pipes-lambda-kit)",
            removal_policy=RemovalPolicy.RETAIN,
        )
