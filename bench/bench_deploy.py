"""`cdk bootstrap` and `cdk deploy` of the reference stack against the local AWS (target: deploy ≤ 60 s)."""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

from bench.results import record
from infra.constants import PROJECT_DIR
from pipeskit.cdk_cli import CdkCli
from pipeskit.local import LocalAWS

NAME = "bench_deploy"


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.getLogger("moto").setLevel(logging.ERROR)
    with LocalAWS(port=0, quiet=True, iam=False) as aws, tempfile.TemporaryDirectory() as tmp:
        cli = CdkCli(PROJECT_DIR, output_dir=Path(tmp) / "cdk.out")
        env = aws.env()
        timings = {
            "cdk bootstrap": cli.bootstrap(aws.settings.account_id, aws.settings.region, env),
            "cdk deploy": cli.deploy(Path(tmp) / "outputs.json", env)[0],
        }
    record(NAME, "cdk bootstrap to the local AWS (pinned CLI)", "s", timings["cdk bootstrap"])
    deploy_s = timings["cdk deploy"]
    record(NAME, "cdk deploy of the reference stack to the local AWS", "s", deploy_s, target="≤ 60 s",
           met=deploy_s <= 60)  # fmt: skip


if __name__ == "__main__":
    main()
