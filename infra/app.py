"""The CDK app: ``npx cdk synth`` / ``npx cdk deploy`` run this through ``cdk.json``.

Settings come from the ``pipeskit`` context object in ``cdk.json``; override one with
``-c pipeskit:stage=prod``. ``cdk_nag``'s AWS Solutions checks run on every synth.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from .settings import StackSettings
from .stack import PipesKitStack


def build_app(app: cdk.App | None = None) -> tuple[cdk.App, PipesKitStack]:
    """Create the app and its stack (without synthesizing), checks attached."""
    app = app or cdk.App()
    settings = StackSettings.from_context(app.node.try_get_context)
    stack = PipesKitStack(
        app,
        settings.stack_name,
        settings=settings,
        description=f"pipes-lambda-kit ({settings.stage}): Dagster Pipes on AWS Lambda",
    )
    cdk.Tags.of(app).add("project", "pipes-lambda-kit")
    cdk.Tags.of(app).add("stage", settings.stage)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
