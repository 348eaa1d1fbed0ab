"""``pipeskit``: build the layer, run the local AWS, run the demo.

Each subcommand imports what it needs lazily, so ``pipeskit --help`` works with only the core
dependencies installed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _layer(args: argparse.Namespace) -> int:
    from layers.build import main as build_main

    return build_main(["--force"] if args.force else [])


def _local(args: argparse.Namespace) -> int:
    from local_aws.cli import run

    return run(args)


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    """The ``pipeskit`` argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="pipeskit",
        description="pipes-lambda-kit: run Dagster Pipes on AWS Lambda, locally or in your account.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    layer = commands.add_parser(
        "layer", help="build (or reuse) the pipes layer zip", description="Build the pipes layer zip "
        "for the Lambda Python 3.12 runtime from pinned PyPI wheels, without Docker. Prints its path."
    )
    layer.add_argument("--force", action="store_true", help="rebuild even if a cached zip exists")
    layer.set_defaults(handler=_layer)

    local = commands.add_parser(
        "local",
        help="serve a local AWS (S3, SQS, Logs, CloudFormation, Lambda that runs code) on one port",
        description="Start the local AWS endpoint: moto for the AWS APIs the kit uses, and the kit's "
        "own Lambda runtime so functions really run, without Docker. Prints the environment "
        "variables to export; Ctrl-C stops it.",
    )
    try:
        from local_aws.cli import configure_parser
    except ImportError:  # the `local` extra is not installed
        local.set_defaults(handler=lambda _args: _missing_extra("local"))
    else:
        configure_parser(local)
        local.set_defaults(handler=_local)

    demo = commands.add_parser(
        "demo",
        help="the main job: deploy the kit to the local AWS and materialize the demo assets",
        description="Start the local AWS, `cdk deploy` the kit's stack to it with the pinned CDK CLI, "
        "materialize the demo assets with Dagster (functions really run), print a summary, stop.",
    )
    demo.add_argument("--port", type=int, default=4566,
                      help="port of the local AWS (default 4566; 0 picks a free one)")
    demo.add_argument("--cdk", help="CDK CLI to run (default: the repo's pinned node_modules/.bin/cdk)")
    demo.set_defaults(handler=_demo)
    return parser


def _missing_extra(extra: str) -> int:
    print(f"error: this command needs the '{extra}' extra: pip install 'pipes-lambda-kit[{extra}]'",
          file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pipeskit`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)
