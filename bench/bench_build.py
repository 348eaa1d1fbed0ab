"""Layer build and synth figures: layer zip size, cold layer build, `cdk synth` wall time."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from infra.constants import LAYER_REQUIREMENTS, PROJECT_DIR
from pipeskit.cdk.layer_build import LayerBuildSettings, build_layer
from pipeskit.cdk_cli import CdkCli


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for label, requirements in (("library layer", None), ("reference layer", LAYER_REQUIREMENTS)):
            started = time.perf_counter()
            settings = LayerBuildSettings(build_dir=Path(tmp), requirements=requirements)
            path = build_layer(settings, force=True)
            rows.append((label, path.stat().st_size, time.perf_counter() - started))
        synth_s = CdkCli(PROJECT_DIR, output_dir=Path(tmp) / "cdk.out").synth()
    print(f"{'figure':<36}{'value':>16}")
    for label, size, seconds in rows:
        print(f"{label + ' zip':<36}{size:>10,} bytes")
        print(f"{label + ' build (no cache)':<36}{seconds:>14.2f} s")
    print(f"{'cdk synth (pinned CLI)':<36}{synth_s:>14.2f} s")


if __name__ == "__main__":
    main()
