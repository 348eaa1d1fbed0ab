"""`cdk bootstrap` and `cdk deploy` of the kit's stack against the local AWS (target: deploy ≤ 60 s)."""

from __future__ import annotations

import logging
import os
import warnings

from local_aws import LocalAWS
from pipeskit.demo import DemoReport, deploy, resolve_cdk


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.getLogger("moto").setLevel(logging.ERROR)
    with LocalAWS(port=0, quiet=True) as aws:
        report = DemoReport(endpoint=aws.endpoint_url)
        env = {**os.environ, **aws.env(), "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
        deploy(report, resolve_cdk(None), env, aws.settings.account_id, aws.settings.region)
    print(f"{'step':<16}{'s':>8}{'target':>10}")
    for step, seconds in report.timings.items():
        target = "<= 60" if step == "cdk deploy" else ""
        print(f"{step:<16}{seconds:>8.1f}{target:>10}")


if __name__ == "__main__":
    main()
