"""The pipes layer as a CDK construct."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from pipeskit_lambda.protocol import LAMBDA_RUNTIME as RUNTIME_NAME
from pipeskit_lambda.protocol import LAYER_DESCRIPTION

from ..layer_build import LayerBuildSettings, build_layer

LAMBDA_RUNTIME = lambda_.Runtime(RUNTIME_NAME, lambda_.RuntimeFamily.PYTHON)


class PipesLayer(Construct):
    """A Lambda layer carrying ``dagster-pipes`` and the kit's ``pipeskit_lambda``.

    The zip is built (or taken from the cache) at synth time by `pipeskit.layer_build.build_layer`, from
    pinned PyPI wheels, without Docker.

    Args:
        scope: parent construct.
        construct_id: construct id.
        requirements_file: pinned requirements the layer carries; defaults to the library's
            (``dagster-pipes`` only). Add what your handlers import, e.g. ``aws-lambda-powertools``.
        build_settings: how the layer zip is built; defaults target Python 3.12 on x86_64.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        requirements_file: str | Path | None = None,
        build_settings: LayerBuildSettings | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = build_settings or LayerBuildSettings.from_env()
        if requirements_file is not None:
            settings = settings.replace(requirements=Path(requirements_file))
        self.zip_path = build_layer(settings)
        zip_path = self.zip_path
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=lambda_.Code.from_asset(str(zip_path)),
            compatible_runtimes=[LAMBDA_RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description=LAYER_DESCRIPTION,
            removal_policy=RemovalPolicy.RETAIN,
        )
