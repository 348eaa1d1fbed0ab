"""Layer build and synth figures: layer zip size, cold layer build, `cdk synth` wall time."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from layers.build import LayerBuildSettings, build_layer
from pipeskit.demo import resolve_cdk, run_cdk


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        path = build_layer(LayerBuildSettings(build_dir=Path(tmp)), force=True)
        build_s = time.perf_counter() - started
        size = path.stat().st_size
        env = {**os.environ, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
        synth_s = run_cdk(resolve_cdk(None), ["synth", "--quiet", "--output", str(Path(tmp) / "cdk.out")], env)
    print(f"{'figure':<28}{'value':>14}")
    print(f"{'pipes layer zip':<28}{size:>10} bytes")
    print(f"{'layer build (no cache)':<28}{build_s:>12.2f} s")
    print(f"{'cdk synth (pinned CLI)':<28}{synth_s:>12.2f} s")


if __name__ == "__main__":
    main()
