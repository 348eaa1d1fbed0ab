"""The demo: synthesize the kit's stack with the pinned CDK CLI and summarize what it deploys.

Until the end-to-end demo lands, this shows what ``cdk deploy`` would create.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from infra.constants import REPO_ROOT


def resolve_cdk(cdk: str | None) -> str:
    """The CDK CLI to run: the one asked for, else the repo's pinned one, else whatever is on PATH."""
    if cdk:
        return cdk
    pinned = REPO_ROOT / "node_modules" / ".bin" / "cdk"
    if pinned.exists():
        return str(pinned)
    found = shutil.which("cdk")
    if not found:
        raise SystemExit("error: the CDK CLI is not installed; run `make install` (npm ci) first")
    return found


def _synth(cdk: str, out_dir: Path) -> float:
    started = time.perf_counter()
    env = {**os.environ, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
    result = subprocess.run(
        [cdk, "synth", "--quiet", "--output", str(out_dir)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"cdk synth failed:\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - started


def summarize_template(template: dict) -> list[str]:
    """Readable lines: resources by type, then the outputs the orchestrator reads."""
    lines = ["Resources:"]
    counts = Counter(r["Type"] for r in template["Resources"].values())
    for type_, count in sorted(counts.items()):
        if not type_.startswith("AWS::CDK"):
            lines.append(f"  {count} x {type_}")
    lines.append("Outputs (read by the orchestrator after deploy):")
    for name in sorted(template.get("Outputs", {})):
        lines.append(f"  {name}")
    return lines


def run_demo(args: argparse.Namespace) -> int:
    out_dir = REPO_ROOT / "cdk.out"
    seconds = _synth(resolve_cdk(args.cdk), out_dir)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    stacks = [a for a, v in manifest["artifacts"].items() if v["type"] == "aws:cloudformation:stack"]
    for stack in stacks:
        template = json.loads((out_dir / f"{stack}.template.json").read_text())
        print(f"Stack {stack} (synthesized in {seconds:.1f} s; cdk-nag AwsSolutions: no errors)")
        print("\n".join(summarize_template(template)))
    print("\nThis is what `cdk deploy` would create. Deploy to AWS: see README, 'Deploy to AWS'.")
    sys.stdout.flush()
    return 0
