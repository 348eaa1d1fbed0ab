"""``pipeskit``: the kit's one command — build the layer, run the local AWS, adopt a function, invoke a
function and read its logs, run the pinned CDK CLI.

Each subcommand imports what it needs lazily, so ``pipeskit --help`` works with only the core
dependencies installed, and a subcommand whose extra is missing says which extra to install.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from pipeskit_lambda.errors import SettingsError


def _layer(args: argparse.Namespace) -> int:
    from .layer_build import LayerBuildError, LayerBuildSettings, build_layer, export_layer

    try:
        settings = LayerBuildSettings.from_env(requirements=args.requirements)
        if args.output:
            path = export_layer(args.output, settings, force=args.force)
        else:
            path = build_layer(settings, force=args.force)
    except LayerBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(path)
    print(f"# {path.stat().st_size:,} bytes", file=sys.stderr)
    return 0


def _local(args: argparse.Namespace) -> int:
    from .local.cli import run

    return run(args)


def _adopt(args: argparse.Namespace) -> int:
    import boto3

    from .adopt import AdoptError, apply, layer_from_stack, plan_adoption, plan_undo

    lambda_client = boto3.client("lambda")
    try:
        if args.undo:
            plan = plan_undo(lambda_client, args.function)
        else:
            layer = layer_from_stack(boto3.client("cloudformation"), args.stack) if args.stack else args.layer
            plan = plan_adoption(lambda_client, args.function, layer)
        print(plan.describe(undo=args.undo, dry_run=args.dry_run))
        if not args.dry_run:
            apply(lambda_client, plan)
    except AdoptError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except lambda_client.exceptions.ResourceNotFoundException as error:
        print(f"error: {error.response['Error']['Message']}", file=sys.stderr)
        return 2
    return 0


def _invoke(args: argparse.Namespace) -> int:
    from .lambda_commands import LambdaCommandError, invoke_command, lambda_client_from_env, read_payload

    try:
        payload = read_payload(args.payload, sys.stdin)  # checked before anything is invoked
        client = lambda_client_from_env()
        return invoke_command(
            client,
            args.function,
            payload,
            asynchronous=args.asynchronous,
            qualifier=args.qualifier,
            as_json=args.json,
            out=sys.stdout,
            err=sys.stderr,
        )
    except LambdaCommandError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: a synchronous invocation goes on running in Lambda", file=sys.stderr)
        return 130


def _logs(args: argparse.Namespace) -> int:
    from .lambda_commands import LambdaCommandError, logs_clients_from_env, logs_command

    try:
        logs_client, lambda_client = logs_clients_from_env()
        return logs_command(
            logs_client,
            lambda_client,
            args.function,
            request_id=args.request_id,
            follow=args.follow,
            since=args.since,
            as_json=args.json,
            out=sys.stdout,
            err=sys.stderr,
        )
    except LambdaCommandError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


def _callback(args: argparse.Namespace) -> int:
    import json

    from .durable import complete_callback, fail_callback
    from .lambda_commands import LambdaCommandError, lambda_client_from_env

    result = None
    if args.action == "succeed" and args.result is not None:
        try:
            result = json.loads(args.result)
        except ValueError as error:
            print(f"error: --result is not JSON ({error}): {args.result[:200]!r}; nothing was sent", file=sys.stderr)
            return 2
    try:
        client = lambda_client_from_env()
    except LambdaCommandError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.action == "succeed":
        complete_callback(client, args.callback_id, result)
    else:
        fail_callback(client, args.callback_id, args.error_type, args.message)
    print(f"callback {args.callback_id}: {'completed' if args.action == 'succeed' else 'failed'}", file=sys.stderr)
    return 0


def _cdk(args: argparse.Namespace) -> int:
    from .cdk_cli import CdkCli, CdkCliError

    try:
        return CdkCli(Path.cwd()).call(args.arguments)
    except CdkCliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # only while installing: the CLI itself gets Ctrl-C and decides
        print("interrupted: the CDK CLI was not installed; the next use installs it", file=sys.stderr)
        return 130


def _env(args: argparse.Namespace) -> int:
    import shlex

    import boto3

    from .errors import StackOutputsError
    from .settings import DeploymentSettings
    from .stack_outputs import stack_deployment_values

    try:
        values = stack_deployment_values(boto3.client("cloudformation"), args.stack)
    except StackOutputsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, value in values.items():
        print(f"export {DeploymentSettings.env_var(name)}={shlex.quote(value)}")
    return 0


def _since(text: str) -> float:
    from .lambda_commands import parse_since

    try:
        return parse_since(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _version() -> str:
    from . import __version__

    return f"pipeskit {__version__}"


def build_parser() -> argparse.ArgumentParser:
    """The ``pipeskit`` argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="pipeskit",
        description="pipes-lambda-kit: run Dagster Pipes on AWS Lambda, locally or in your account.",
        epilog="Run `pipeskit COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    layer = commands.add_parser(
        "layer",
        help="build (or reuse) the pipes layer zip and print its path",
        description="Build the pipes layer zip (dagster-pipes and pipeskit_lambda, plus whatever your "
        "requirements file pins) for the Lambda Python 3.12 runtime from PyPI wheels, without Docker. "
        "The zip is cached in the user's cache directory (PIPESKIT_LAYER_BUILD_DIR overrides it); "
        "the same inputs give the same bytes. Prints the zip's path.",
    )
    layer.add_argument("--output", type=Path, metavar="DIR", help="copy the zip into DIR and print that path")
    layer.add_argument(
        "--requirements",
        type=Path,
        metavar="FILE",
        help="pinned requirements the layer carries (default: dagster-pipes only; env PIPESKIT_LAYER_REQUIREMENTS)",
    )
    layer.add_argument("--force", action="store_true", help="rebuild even if a cached zip exists")
    layer.set_defaults(handler=_layer)

    local = commands.add_parser(
        "local",
        help="serve a local AWS (S3, SQS, Logs, CloudFormation, Lambda that runs code) on one port",
        description="Start the local AWS endpoint: moto for the AWS APIs the kit uses, and the kit's "
        "own Lambda runtime so functions really run, without Docker. Prints the environment "
        "variables to export; Ctrl-C stops it. Every option also reads PIPESKIT_LOCAL_<NAME>.",
    )
    try:
        from .local.cli import configure_parser
    except ImportError:  # the `local` extra is not installed
        local.set_defaults(handler=lambda _args: _missing_extra("local"))
    else:
        configure_parser(local)
        local.set_defaults(handler=_local)

    adopt = commands.add_parser(
        "adopt",
        help="put an existing function behind the kit's entrypoint (fixes dagster#22094), or --undo",
        description="Put a function created outside the kit behind pipeskit_lambda.entrypoint.handler, so "
        "every invocation of a warm environment gets its own Pipes context: attaches the pipes layer if it "
        "is missing, sets the handler to the entrypoint and moves the old one to PIPESKIT_HANDLER. "
        "Nothing else changes. Prints each change. Uses boto3's usual credentials, region and endpoint.",
    )
    adopt.add_argument("function", help="function name or ARN")
    source = adopt.add_mutually_exclusive_group()
    source.add_argument("--layer", metavar="ARN", help="pipes layer version to attach if missing")
    source.add_argument("--stack", metavar="NAME", help="take the layer from this kit stack's PipesLayerArn output")
    adopt.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")
    adopt.add_argument("--undo", action="store_true", help="give the function its own handler back")
    adopt.set_defaults(handler=_adopt)

    invoke = commands.add_parser(
        "invoke",
        help="invoke a function and print its response (the request id on stderr)",
        description="Invoke a Lambda function once and print its response payload (indented when it is JSON) on "
        "stdout; the request id, the version that ran and the command showing the invocation's log go to stderr. "
        "Synchronous by default, with no client-side retry (a retried invoke runs the function twice) and a read "
        "timeout above Lambda's 15 minutes. Exit status: 0 when the function succeeded, 1 when it failed (its "
        "error type, message and the end of its log on stderr), 2 when nothing could be invoked. Uses boto3's "
        "usual credentials, region and endpoint (AWS_PROFILE, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL).",
        epilog="example: pipeskit invoke pipeskit-dev-hello --payload '{\"name\": \"kit\"}'",
    )
    invoke.add_argument("function", help="function name, name:alias, or ARN")
    invoke.add_argument(
        "--payload",
        default="{}",
        metavar="JSON|@FILE",
        help="the event: inline JSON, @FILE to read it from a file, or @- from stdin; checked to be JSON "
        "before anything is invoked (default: {})",
    )
    invoke.add_argument(
        "--async",
        dest="asynchronous",
        action="store_true",
        help="invoke asynchronously (InvocationType=Event): Lambda queues the event and answers 202; prints "
        "the request id to follow with `pipeskit logs FUNCTION --request-id ID --follow`",
    )
    invoke.add_argument("--qualifier", metavar="Q", help="version or alias to invoke")
    invoke.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object instead: function, request_id, status_code, executed_version, "
        "function_error, payload, log_tail (the last 4 KB of the log)",
    )
    invoke.set_defaults(handler=_invoke)

    logs = commands.add_parser(
        "logs",
        help="print a function's recent CloudWatch log events, or one invocation's lines",
        description="Read the function's CloudWatch Logs group (/aws/lambda/NAME, or its LoggingConfig.LogGroup). "
        "Without --request-id: the events of the last 10 minutes (--since) in time order, as TIMESTAMP  "
        "[VERSION]STREAM  MESSAGE. With --request-id: exactly that invocation's lines, from its START line to "
        "its REPORT line (platform.start to platform.report in the JSON log format), including what the handler "
        "printed. Exit status 2 when the group does not exist or the request is not found. Uses boto3's usual "
        "credentials, region and endpoint.",
        epilog="example: pipeskit logs pipeskit-dev-hello --request-id ID --follow (ID: the request id that "
        "`pipeskit invoke` prints)",
    )
    logs.add_argument("function", help="function name, name:alias, or ARN")
    logs.add_argument(
        "--request-id",
        metavar="ID",
        help="show only this invocation's lines (searched in the whole group unless --since is given)",
    )
    logs.add_argument(
        "--follow",
        action="store_true",
        help="keep printing new events until Ctrl-C; with --request-id, wait for that invocation and stop by "
        "itself after its REPORT line; waits for a log group that does not exist yet",
    )
    logs.add_argument(
        "--since",
        type=_since,
        metavar="DURATION",
        help="start this long ago: 30s, 10m, 2h, 1d, 1w, or an ISO-8601 time (default: 10m; with --request-id "
        "it bounds the search, which otherwise covers the whole group)",
    )
    logs.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per event: timestamp (ISO-8601, UTC), log_stream, message",
    )
    logs.set_defaults(handler=_logs)

    callback = commands.add_parser(
        "callback",
        help="complete or fail the callback a durable function waits for",
        description="Answer the callback a durable function's execution waits for (create_callback / "
        "wait_for_callback): its id is in the step's log ('awaiting callback ... callback id ID'). 'succeed' hands "
        "the function --result (JSON; SendDurableExecutionCallbackSuccess), 'fail' makes its wait raise with "
        "--error-type and --message (SendDurableExecutionCallbackFailure). Uses boto3's usual credentials, region "
        "and endpoint. Exit status: 0 when Lambda took the answer, 2 when it was refused or nothing was sent.",
        epilog="example: pipeskit callback succeed CALLBACK_ID --result '{\"approved\": true}'",
    )
    callback.add_argument("action", choices=("succeed", "fail"), help="complete the callback, or fail it")
    callback.add_argument("callback_id", metavar="CALLBACK_ID", help="the callback's id, from the step's log")
    callback.add_argument("--result", metavar="JSON", help="succeed: the JSON value handed to the function")
    callback.add_argument(
        "--error-type", default="CallbackFailed", help="fail: the error's type (default: %(default)s)"
    )
    callback.add_argument("--message", default="failed from Dagster", help="fail: the error's message")
    callback.set_defaults(handler=_callback)

    cdk = commands.add_parser(
        "cdk",
        help="run the kit's pinned AWS CDK CLI on Node.js 22: pipeskit cdk deploy, synth, --version, ...",
        description="Run the AWS CDK CLI the kit pins, on the Node.js 22 LTS it pins, in the current directory: "
        "every argument goes to the CLI as it is, its exit status is this command's. The CLI is the project's "
        "own node_modules/.bin/cdk when there is one, else the kit's, installed with npm into the user's cache "
        "on first use (PIPESKIT_CDK_CACHE_DIR moves it; npm is needed for that once). PIPESKIT_CDK runs another "
        "cdk instead. To deploy to the local AWS, export the variables `pipeskit local` prints first.",
        epilog="example: pipeskit cdk deploy --require-approval never",
        add_help=False,  # `pipeskit cdk --help` is the CDK CLI's help
        prefix_chars="\0",  # every argument, options included, is the CDK CLI's
    )
    cdk.add_argument("arguments", nargs=argparse.REMAINDER, help="the CDK CLI's arguments")
    cdk.set_defaults(handler=_cdk)

    env = commands.add_parser(
        "env",
        help="print `export PIPESKIT_...=...` lines of the deployment settings a deployed stack's outputs give",
        description="Read the outputs of a deployed kit stack (a PipesDeployment: MessagesBucketName, "
        "ContextBucketName, WorkQueueUrl, DeadLetterQueueUrl, FailureQueueUrl) with one DescribeStacks and print "
        "one shell-quoted `export PIPESKIT_...=...` line for each deployment setting they give, for `eval`. Exit "
        "status 2, with one line on stderr, when the stack does not exist or has none of the kit's outputs. Uses "
        "boto3's usual credentials, region and endpoint.",
        epilog='example: eval "$(pipeskit env --stack my-pipes)"',
    )
    env.add_argument("--stack", required=True, metavar="NAME", help="the deployed stack's name")
    env.set_defaults(handler=_env)

    return parser


def _missing_extra(extra: str) -> int:
    print(
        f"error: this command needs the '{extra}' extra: pip install 'pipes-lambda-kit[{extra}]'",
        file=sys.stderr,
    )
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pipeskit`` console script.

    Every command's invalid setting (a flag's value, named as the flag, or a ``PIPESKIT_*``
    variable) and every AWS call that failed for want of an endpoint, credentials, a region or a
    permission ends the command with one ``error: …`` line saying what to do, and exit status 2.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:
        from .aws_errors import aws_error

        action = f"pipeskit {args.command}"
        if isinstance(error, ClientError):
            action += f" ({error.operation_name})"
        print(f"error: {aws_error(error, action, nothing_done='')}".rstrip(), file=sys.stderr)
        return 2
