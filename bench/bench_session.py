"""Orchestrator time and AWS calls per synchronous session: this kit's client against dagster-aws's.

One small Pipes function (a Dagster-docs-style handler: a log line, a custom message, a
materialization) runs behind the kit's entrypoint on the local AWS, which runs in a child process.
In one asset, sessions of the kit's client, of dagster-aws's client and raw boto3 invokes of the
same function with the same payload alternate, so that machine noise falls on all three alike; the
order within a round cycles through every permutation, so no client is favoured by its position
(whichever runs right after the raw invoke pays more inside Dagster's provenance lookup). The
figure is the wall time of each ``run()`` call (and of the raw ``invoke``), the kit/peer ratio of
each round with its spread, and the orchestrator's CPU time per session. Targets: kit ≤ 1.0 × peer;
exactly one AWS call (``Invoke``) per session.
"""

import contextlib
import io
import itertools
import os
import statistics
import time
import warnings
from collections import Counter
from typing import Any

from dagster import AssetExecutionContext, DagsterInstance, MaterializeResult, asset, materialize
from dagster_aws.pipes import PipesLambdaClient as PeerPipesLambdaClient

from bench.child_aws import ChildAWS
from bench.results import median_p95, record
from infra.constants import LAYER_REQUIREMENTS, PROJECT_DIR
from pipeskit import PipesLambdaClient
from pipeskit.local.testing import ApiCallCounter, deploy_pipes_function, lambda_role, publish_pipes_layer

HANDLER = PROJECT_DIR / "tests" / "integration" / "handlers" / "reporter.py"
SESSIONS = int(os.environ.get("BENCH_SESSIONS", "300"))
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
NAME = "bench_session"


def main() -> None:
    warnings.filterwarnings("ignore")
    with ChildAWS() as aws:
        lam = aws.client("lambda", read_timeout=300, retries=0)
        function = deploy_pipes_function(
            lam, code=HANDLER, user_handler="reporter.lambda_handler",
            layer_arn=publish_pipes_layer(lam, LAYER_REQUIREMENTS), role_arn=lambda_role(aws.client("iam")),
        )  # fmt: skip
        kit_calls, peer_calls = ApiCallCounter(), ApiCallCounter()
        kit_lambda = kit_calls.attach(aws.client("lambda", read_timeout=960, retries=0))
        sent: dict[str, Any] = {}  # the kit's last invoke parameters, replayed by the raw invoke
        kit_lambda.meta.events.register("before-parameter-build.lambda.Invoke", lambda params, **_: sent.update(params))
        kit = PipesLambdaClient(client=kit_lambda)
        peer = PeerPipesLambdaClient(client=peer_calls.attach(aws.client("lambda", read_timeout=960, retries=0)))
        raw = aws.client("lambda", read_timeout=960, retries=0)
        wall: dict[str, list[float]] = {"kit": [], "peer": [], "raw": []}
        cpu: dict[str, list[float]] = {"kit": [], "peer": [], "raw": []}
        event = {"id": "bench"}

        @asset
        def sessions(context: AssetExecutionContext) -> MaterializeResult:
            def kit_session() -> None:
                completed = kit.run(context=context, function_name=function, event=event)
                assert list(completed.get_custom_messages()) == [{"id": "bench"}], completed.get_custom_messages()

            def peer_session() -> None:
                completed = peer.run(context=context, function_name=function, event=event)
                assert list(completed.get_custom_messages()) == [{"id": "bench"}], completed.get_custom_messages()

            def raw_invoke() -> None:  # the same function and payload, no Pipes session around it
                response = raw.invoke(FunctionName=function, Payload=sent["Payload"])
                response["Payload"].read()

            kit_session()  # warm the environment and the clients
            peer_session()
            raw_invoke()
            kit_calls.calls.clear()
            peer_calls.calls.clear()
            calls = {"kit": kit_session, "peer": peer_session, "raw": raw_invoke}
            orders = itertools.cycle(itertools.permutations(calls))  # every position, in turn, for each
            for _ in range(SESSIONS):
                for who in next(orders):
                    started, started_cpu = time.perf_counter(), time.process_time()
                    calls[who]()
                    wall[who].append((time.perf_counter() - started) * 1000)
                    cpu[who].append((time.process_time() - started_cpu) * 1000)
            return MaterializeResult()

        with contextlib.redirect_stdout(io.StringIO()):  # dagster-aws echoes each log tail to stdout
            result = materialize([sessions], instance=DagsterInstance.ephemeral(), run_config=QUIET)
        assert result.success

    print(f"{SESSIONS} synchronous sessions each, alternating; local AWS in a child process")
    kit_ms, kit_p95 = median_p95(wall["kit"])
    peer_ms, peer_p95 = median_p95(wall["peer"])
    raw_ms, raw_p95 = median_p95(wall["raw"])
    ratios = sorted(k / p for k, p in zip(wall["kit"], wall["peer"], strict=True))  # per round: paired
    ratio, low, high = statistics.median(ratios), ratios[len(ratios) // 4], ratios[3 * len(ratios) // 4]
    print(f"  kit/peer per round: median {ratio:.3f}, interquartile {low:.3f}–{high:.3f}")
    record(NAME, "orchestrator time per synchronous session (run() wall)", "ms", kit_ms, peer=peer_ms,
           kit_p95=kit_p95, peer_p95=peer_p95, target="kit ≤ 1.0 × peer", met=kit_ms <= peer_ms)  # fmt: skip
    record(NAME, "kit/peer session time per round, median (alternating order)", "×", ratio,
           target="≤ 1.0", met=ratio <= 1.0)  # fmt: skip
    record(NAME, "kit/peer session time per round, interquartile spread", "×", high - low)
    record(NAME, "raw boto3 invoke of the same function and payload", "ms", raw_ms, kit_p95=raw_p95)
    record(NAME, "session overhead over the raw invoke", "ms", kit_ms - raw_ms, peer=peer_ms - raw_ms)
    record(NAME, "orchestrator CPU per synchronous session", "ms", statistics.median(cpu["kit"]),
           peer=statistics.median(cpu["peer"]))  # fmt: skip
    kit_by_api, peer_by_api = Counter(kit_calls.calls), Counter(peer_calls.calls)
    print(f"  AWS calls by API over {SESSIONS} sessions: kit {dict(kit_by_api)}, peer {dict(peer_by_api)}")
    only_invoke = set(kit_by_api) == {"Invoke"} and kit_by_api["Invoke"] == SESSIONS
    record(NAME, "AWS API calls per synchronous session (default channel)", "calls",
           len(kit_calls.calls) / SESSIONS, peer=len(peer_calls.calls) / SESSIONS,
           target="exactly 1 (Invoke)", met=only_invoke)  # fmt: skip


if __name__ == "__main__":
    main()
