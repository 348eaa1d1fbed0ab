"""Benchmark the local AWS Lambda runtime: warm invoke overhead and cold start.

Run: ``python -m bench.bench_local_aws [--warm N] [--cold N]``. Prints a table with
the targets (warm p50 <= 10 ms through boto3, cold start <= 300 ms).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

from bench.results import median_p95, record
from pipeskit.local import LocalAWS
from pipeskit.local.testing import zip_files

NOOP = "def handler(event, context):\n    return None\n"
WARM_TARGET_MS = 10.0
COLD_TARGET_MS = 300.0
NAME = "bench_local_aws"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warm", type=int, default=200, help="warm invocations to time")
    parser.add_argument("--cold", type=int, default=10, help="cold starts to time")
    parser.add_argument("--runtime", default="python3.12", help="the functions' Lambda runtime")
    args = parser.parse_args(argv)

    with LocalAWS(port=0, iam=False) as aws:
        iam = aws.client("iam")
        role = iam.create_role(
            RoleName=f"bench-{uuid.uuid4().hex[:8]}",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        lam = aws.client("lambda", retries=0)

        def create() -> str:
            name = f"bench-{uuid.uuid4().hex[:10]}"
            lam.create_function(
                FunctionName=name, Runtime=args.runtime, Role=role, Handler="app.handler",
                Code={"ZipFile": zip_files({"app.py": NOOP})},
            )
            return name

        name = create()
        lam.invoke(FunctionName=name)  # cold start, not measured here
        for _ in range(20):  # warm up the client connection
            lam.invoke(FunctionName=name)
        warm = []
        for _ in range(args.warm):
            started = time.perf_counter()
            lam.invoke(FunctionName=name)
            warm.append((time.perf_counter() - started) * 1000)

        cold = []
        for _ in range(args.cold):
            fresh = create()  # a new function: new code extraction and a new environment
            started = time.perf_counter()
            lam.invoke(FunctionName=fresh)
            cold.append((time.perf_counter() - started) * 1000)
            lam.delete_function(FunctionName=fresh)

    print(f"({args.warm} warm invocations, {args.cold} cold starts, no-op {args.runtime} handler, boto3 through HTTP)")
    warm_ms, warm_p95 = median_p95(warm)
    cold_ms, cold_p95 = median_p95(cold)
    record(NAME, "local AWS: warm invoke of a no-op handler through boto3", "ms", warm_ms, kit_p95=warm_p95,
           target=f"≤ {WARM_TARGET_MS:g} ms p50", met=warm_ms <= WARM_TARGET_MS)  # fmt: skip
    record(NAME, "local AWS: cold start of a no-op handler", "ms", cold_ms, kit_p95=cold_p95,
           target=f"≤ {COLD_TARGET_MS:g} ms p50", met=cold_ms <= COLD_TARGET_MS)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
