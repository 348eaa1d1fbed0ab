"""The pipes layer: what runs inside Lambda next to the user's handler.

`layers.build` installs the pinned Lambda-side requirements from PyPI for the Lambda runtime's
platform (no Docker), adds the kit's own helper package `pipeskit_lambda`, and writes a
deterministic, cached zip that the CDK `PipesLayer` construct deploys.
"""
