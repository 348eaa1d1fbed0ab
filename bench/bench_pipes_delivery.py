"""Message fidelity and AWS calls per session: this kit's client against dagster-aws's.

One function (a Dagster-docs-style handler, no kit code) emits 10, 1,000, 100,000 or 1,000,000
custom messages interleaved with 2 MB of ordinary log lines, on the local AWS. Each client runs it
as a Dagster asset; the figures are the share of messages delivered (target: 100 % for the kit at
every size), the share of ordinary lines forwarded (to the step's log for the kit, to stdout for
dagster-aws), AWS API calls per session, wall time and messages delivered per second. dagster-aws
reads the 4 KB log tail. The kit's CloudWatch channel is left out at a million messages (it pages
over 100 MB of log); the response channel carries them compressed in the response.
"""

import contextlib
import io
import statistics
import time
import warnings
from typing import Any

from dagster import AssetExecutionContext, DagsterInstance, ResourceParam, asset, materialize
from dagster_aws.pipes import PipesLambdaClient as PeerPipesLambdaClient

from bench.results import record
from infra.constants import LAYER_REQUIREMENTS, PROJECT_DIR
from pipeskit import CloudWatchLogsMessageReader, PipesLambdaClient, ResponsePayloadMessageReader
from pipeskit.local import LocalAWS
from pipeskit.local.testing import ApiCallCounter, deploy_pipes_function, lambda_role, publish_pipes_layer

NOISY_HANDLER = PROJECT_DIR / "tests" / "integration" / "handlers" / "noisy.py"
NOISE_BYTES = 2_000_000
SIZES = {10: 5, 1000: 3, 100_000: 1, 1_000_000: 1}  # messages: sessions per client
CLOUDWATCH_UP_TO = 100_000
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
NAME = "bench_pipes_delivery"
KIT, KIT_CLOUDWATCH, PEER = "kit response payload", "kit CloudWatch Logs", "dagster-aws PipesLambdaClient"


NOISE_LINE = "x" * 199


def run_session(client: Any, function_name: str, messages: int) -> tuple[int, int, bool]:
    """Materialize one asset through ``client``; returns (messages delivered, ordinary lines forwarded,
    run succeeded)."""
    delivered: list[int] = []

    @asset
    def noisy(context: AssetExecutionContext, lambda_pipes: ResourceParam[Any]):  # noqa: ANN202
        completed = lambda_pipes.run(
            context=context, function_name=function_name, event={"messages": messages, "noise_bytes": NOISE_BYTES}
        )
        delivered.append(len({m["i"] for m in completed.get_custom_messages()}))
        yield from completed.get_results()

    echoed = io.StringIO()
    instance = DagsterInstance.ephemeral()
    with contextlib.redirect_stdout(echoed):  # dagster-aws echoes the log tail to stdout
        result = materialize([noisy], resources={"lambda_pipes": client}, instance=instance,
                             raise_on_error=False, run_config=QUIET)
    logged = "\n".join(e.user_message for e in instance.all_logs(result.run_id) if not e.is_dagster_event)
    forwarded = max(echoed.getvalue().count(NOISE_LINE), logged.count(NOISE_LINE))
    return (delivered[0] if delivered else 0), forwarded, result.success


def main() -> None:
    warnings.filterwarnings("ignore")
    with LocalAWS(port=0, quiet=True, iam=False) as aws:
        lam = aws.client("lambda", retries=0, read_timeout=900)
        function = deploy_pipes_function(
            lam, code=NOISY_HANDLER, user_handler="noisy.lambda_handler", timeout_s=600, memory_mb=3008,
            layer_arn=publish_pipes_layer(lam, LAYER_REQUIREMENTS), role_arn=lambda_role(aws.client("iam")),
        )  # fmt: skip

        def kit(reader: Any) -> tuple[Any, ApiCallCounter]:
            counter = ApiCallCounter()
            lambda_client = counter.attach(aws.client("lambda", retries=0, read_timeout=900))
            message_reader = reader(logs_client=counter.attach(aws.client("logs")), lambda_client=lambda_client)
            return PipesLambdaClient(client=lambda_client, message_reader=message_reader), counter

        def peer() -> tuple[Any, ApiCallCounter]:
            counter = ApiCallCounter()
            return PeerPipesLambdaClient(client=counter.attach(aws.client("lambda", read_timeout=900))), counter

        contenders = {
            KIT: lambda: kit(ResponsePayloadMessageReader),
            KIT_CLOUDWATCH: lambda: kit(CloudWatchLogsMessageReader),
            PEER: peer,
        }
        run_session(contenders[PEER]()[0], function, 10)  # warm the environment
        print(f"custom messages among {NOISE_BYTES / 1e6:.0f} MB of log lines per session; medians\n")
        print(f"{'client':<32}{'messages':>10}{'delivered':>22}{'lines':>8}{'run ok':>8}{'AWS calls':>11}"
              f"{'wall (s)':>10}")
        figures: dict[tuple[str, int], dict[str, float]] = {}
        for messages, repeats in SIZES.items():
            for name, make in contenders.items():
                if name == KIT_CLOUDWATCH and messages > CLOUDWATCH_UP_TO:
                    continue
                delivered, lines, ok, calls, walls = [], [], [], [], []
                for _ in range(repeats):
                    client, counter = make()
                    started = time.perf_counter()
                    count, forwarded, success = run_session(client, function, messages)
                    walls.append(time.perf_counter() - started)
                    delivered.append(count)
                    lines.append(forwarded)
                    ok.append(success)
                    calls.append(len(counter.calls))
                figures[name, messages] = {"share": 100 * min(delivered) / messages, "calls": statistics.median(calls),
                                           "wall": statistics.median(walls),
                                           "lines": 100 * min(lines) / (NOISE_BYTES // 200)}  # fmt: skip
                print(f"{name:<32}{messages:>10,}{f'{min(delivered):,}/{messages:,}':>22}"
                      f"{figures[name, messages]['lines']:>7.1f}%{str(all(ok)):>8}"
                      f"{statistics.median(calls):>11.0f}{statistics.median(walls):>10.2f}", flush=True)

    for messages in SIZES:
        peer = figures[PEER, messages]
        for name in (KIT, KIT_CLOUDWATCH):
            if (name, messages) not in figures:
                continue
            kit_figures = figures[name, messages]
            record(NAME, f"messages delivered, {messages:,} + 2 MB of log lines ({name})", "%", kit_figures["share"],
                   peer=peer["share"], target="100 %", met=kit_figures["share"] == 100, higher_is_better=True)
        record(NAME, f"AWS API calls per session, {messages:,} messages (kit response payload)", "calls",
               figures[KIT, messages]["calls"], peer=peer["calls"])  # fmt: skip
        kit_wall = figures[KIT, messages]["wall"]
        target = {"target": "≤ 2 × peer", "met": kit_wall <= 2 * peer["wall"]} if messages == 100_000 else {}
        record(NAME, f"session wall time, {messages:,} messages (kit response payload)", "s", kit_wall,
               peer=peer["wall"], **target)  # fmt: skip
        delivered_per_s = {name: figures[name, messages]["share"] / 100 * messages / figures[name, messages]["wall"]
                           for name in (KIT, PEER)}  # fmt: skip
        record(NAME, f"messages delivered per second, {messages:,} messages (kit response payload)", "msg/s",
               delivered_per_s[KIT], peer=delivered_per_s[PEER], higher_is_better=True)  # fmt: skip
    record(NAME, "ordinary lines forwarded, 100,000 messages + 2 MB of log lines (kit response payload)", "%",
           figures[KIT, 100_000]["lines"], peer=figures[PEER, 100_000]["lines"], target="100 %",
           met=figures[KIT, 100_000]["lines"] == 100, higher_is_better=True)  # fmt: skip
    record(NAME, "AWS API calls, 100,000 messages + 2 MB of log lines (kit response payload)", "calls",
           figures[KIT, 100_000]["calls"], target="1 (Invoke)", met=figures[KIT, 100_000]["calls"] == 1)


if __name__ == "__main__":
    main()
