"""Messages delivered when the function dies, and AWS calls per session: this kit against dagster-aws.

One Dagster-docs-style handler (no kit code) reports 100 log messages, then dies: it exits
(``os._exit``), times out, or returns a value Lambda cannot marshal. Each client runs it as an
asset on the local AWS; the figure is messages that reached Dagster out of 100. The kit's clients
run it behind the kit's entrypoint, as its constructs deploy it; dagster-aws's client runs it as its
guide deploys it. Then the AWS API calls of one successful and one failed session, by operation.
"""

import contextlib
import io
import re
import warnings
from collections import Counter
from typing import Any

from dagster import AssetExecutionContext, DagsterInstance, ResourceParam, asset, materialize
from dagster_aws.pipes import PipesLambdaClient as PeerPipesLambdaClient

from bench.results import record
from infra.constants import LAYER_REQUIREMENTS, PROJECT_DIR
from pipeskit import CloudWatchLogsMessageReader, PipesLambdaClient, ResponsePayloadMessageReader
from pipeskit.local import LocalAWS
from pipeskit.local.testing import ApiCallCounter, deploy_pipes_function, lambda_role, publish_pipes_layer

HANDLERS = PROJECT_DIR / "tests" / "integration" / "handlers"
SENT = 100
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
NUMBERED = re.compile(r"message \d{3}")
MODES = {"exit": "exits", "timeout": "times out", "marshal": "returns what Lambda cannot marshal"}
KIT, KIT_CLOUDWATCH, PEER = "pipes-lambda-kit, default", "pipes-lambda-kit, CloudWatch", "dagster-aws PipesLambdaClient"
NAME = "bench_failures"


def run_session(client: Any, function_name: str, event: dict[str, Any]) -> tuple[int, bool]:
    """Materialize one asset through ``client``; returns (numbered messages in Dagster's log, success)."""

    @asset
    def dying(context: AssetExecutionContext, lambda_pipes: ResourceParam[Any]):  # noqa: ANN202
        return lambda_pipes.run(context=context, function_name=function_name, event=event).get_results()

    instance = DagsterInstance.ephemeral()
    with contextlib.redirect_stdout(io.StringIO()):  # dagster-aws echoes the log tail to stdout
        result = materialize([dying], resources={"lambda_pipes": client}, instance=instance,
                             raise_on_error=False, run_config=QUIET)
    logged = {r.user_message for r in instance.all_logs(result.run_id) if NUMBERED.fullmatch(r.user_message or "")}
    return len(logged), result.success


def main() -> None:
    warnings.filterwarnings("ignore")
    with LocalAWS(port=0, quiet=True, iam=False) as aws:
        lam = aws.client("lambda", retries=0, read_timeout=300)
        layer, role = publish_pipes_layer(lam, LAYER_REQUIREMENTS), lambda_role(aws.client("iam"))

        def deploy(module: str, entrypoint: bool) -> str:
            return deploy_pipes_function(
                lam, code=HANDLERS / f"{module}.py", user_handler=f"{module}.lambda_handler",
                layer_arn=layer, role_arn=role, timeout_s=3, entrypoint=entrypoint,
            )  # fmt: skip

        kit_dying, peer_dying = deploy("dying", True), deploy("dying", False)
        kit_ok, peer_ok = deploy("reporter", True), deploy("reporter", False)

        def kit(reader: Any) -> tuple[Any, ApiCallCounter]:
            counter = ApiCallCounter()
            lambda_client = counter.attach(aws.client("lambda", retries=0, read_timeout=300))
            logs = counter.attach(aws.client("logs"))
            message_reader = reader(logs_client=logs, lambda_client=lambda_client)
            return PipesLambdaClient(client=lambda_client, message_reader=message_reader), counter

        def peer() -> tuple[Any, ApiCallCounter]:
            counter = ApiCallCounter()
            lambda_client = counter.attach(aws.client("lambda", retries=0, read_timeout=300))
            return PeerPipesLambdaClient(client=lambda_client), counter

        contenders = {
            KIT: (lambda: kit(ResponsePayloadMessageReader), kit_dying, kit_ok),
            KIT_CLOUDWATCH: (lambda: kit(CloudWatchLogsMessageReader), kit_dying, kit_ok),
            PEER: (peer, peer_dying, peer_ok),
        }
        print(f"messages delivered out of {SENT} when the function dies\n")
        print(f"{'client':<40}{'exit':>8}{'timeout':>10}{'marshal':>10}")
        delivered: dict[str, dict[str, int]] = {}
        for name, (make, dying_fn, _) in contenders.items():
            delivered[name] = {
                mode: run_session(make()[0], dying_fn, {"messages": SENT, "mode": mode})[0] for mode in MODES
            }
            cells = [f"{delivered[name][mode]}/{SENT}" for mode in MODES]
            print(f"{name:<40}{cells[0]:>8}{cells[1]:>10}{cells[2]:>10}")

        print("\nAWS API calls per session, by operation\n")
        print(f"{'client':<40}{'successful':<34}{'failed (raise)'}")
        calls: dict[str, tuple[Counter[str], Counter[str]]] = {}
        for name, (make, dying_fn, ok_fn) in contenders.items():
            client, counter = make()
            run_session(client, ok_fn, {"id": "x"})
            success = counter.by_operation()
            counter.calls.clear()
            run_session(client, dying_fn, {"messages": SENT, "mode": "raise"})
            calls[name] = (success, counter.by_operation())
            print(f"{name:<40}{_calls(success):<34}{_calls(calls[name][1])}")

    peer = delivered[PEER]
    for name in (KIT, KIT_CLOUDWATCH):
        for mode, what in MODES.items():
            kit_share = 100 * delivered[name][mode] / SENT
            record(NAME, f"messages delivered when the function {what} ({name.split(', ')[1]})", "%", kit_share,
                   peer=100 * peer[mode] / SENT, target="100 %", met=kit_share == 100, higher_is_better=True)
    for label, index in (("successful", 0), ("failed (raised)", 1)):
        record(NAME, f"AWS API calls of a {label} session (default channel)", "calls",
               sum(calls[KIT][index].values()), peer=sum(calls[PEER][index].values()))  # fmt: skip


def _calls(counts: Counter[str]) -> str:
    return ", ".join(f"{op} {n}" for op, n in sorted(counts.items())) or "none"


if __name__ == "__main__":
    main()
