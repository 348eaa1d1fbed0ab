"""`cdk bootstrap` and `cdk deploy` of the reference stack against the local AWS (target: deploy ≤ 60 s)."""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

from infra.constants import PROJECT_DIR
from pipeskit.cdk_cli import CdkCli
from pipeskit.local import LocalAWS


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.getLogger("moto").setLevel(logging.ERROR)
    with LocalAWS(port=0, quiet=True) as aws, tempfile.TemporaryDirectory() as tmp:
        cli = CdkCli(PROJECT_DIR, output_dir=Path(tmp) / "cdk.out")
        env = aws.env()
        timings = {
            "cdk bootstrap": cli.bootstrap(aws.settings.account_id, aws.settings.region, env),
            "cdk deploy": cli.deploy(Path(tmp) / "outputs.json", env)[0],
        }
    print(f"{'step':<16}{'s':>8}{'target':>10}")
    for step, seconds in timings.items():
        target = "<= 60" if step == "cdk deploy" else ""
        print(f"{step:<16}{seconds:>8.1f}{target:>10}")


if __name__ == "__main__":
    main()
