"""The pipes layer and synth: zip sizes, cold import of ``pipeskit_lambda``, cold build, ``cdk synth``.

The cold import is timed in a fresh ``python3.12`` (Lambda's runtime version, isolated: ``-I -S``)
with only the extracted layer on its path, as an execution environment imports it at init; the
peer's figure is ``import dagster_pipes`` alone, what a function written for dagster-aws imports.
Targets: the library's layer zip ≤ 3 MB, the cold import ≤ 100 ms.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from bench.results import median_p95, record
from infra.constants import LAYER_REQUIREMENTS, PROJECT_DIR
from pipeskit.cdk_cli import CdkCli
from pipeskit.layer_build import LayerBuildSettings, build_layer
from pipeskit_lambda.protocol import LAMBDA_RUNTIME

NAME = "bench_build"
ZIP_TARGET_BYTES = 3 * 1024 * 1024
IMPORT_TARGET_MS = 100.0
IMPORTS = 30
TIMER = (
    "import sys, time; sys.path[:0] = [{path!r}]; started = time.perf_counter(); import {module}; "
    "print((time.perf_counter() - started) * 1000)"
)


def cold_import_ms(python: str, layer_dir: Path, module: str) -> list[float]:
    """Milliseconds to import ``module`` from ``layer_dir`` in fresh isolated interpreters."""
    path = str(layer_dir / "python")
    samples = []
    for _ in range(IMPORTS):
        out = subprocess.run([python, "-I", "-S", "-c", TIMER.format(path=path, module=module)],
                             capture_output=True, text=True, check=True)  # fmt: skip
        samples.append(float(out.stdout))
    return samples


def runtime_python() -> str:
    """Lambda's Python version where this host has it, else this interpreter (said so)."""
    from pipeskit.local.runtime.image import find_python, python_version_of

    found = find_python(python_version_of(LAMBDA_RUNTIME) or "")
    if found is None:
        print(f"  no {LAMBDA_RUNTIME} interpreter here: the import is timed with {sys.version.split()[0]}")
        return sys.executable
    return found.executable


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        built: dict[str, tuple[int, float]] = {}
        archives: dict[str, Path] = {}
        for label, requirements in (("library", None), ("reference deployment", LAYER_REQUIREMENTS)):
            started = time.perf_counter()
            path = build_layer(LayerBuildSettings(build_dir=Path(tmp), requirements=requirements), force=True)
            built[label] = (path.stat().st_size, time.perf_counter() - started)
            archives[label] = path
        layer_dir = Path(tmp) / "layer"
        with zipfile.ZipFile(archives["library"]) as archive:
            archive.extractall(layer_dir)
        python = runtime_python()
        kit_import = cold_import_ms(python, layer_dir, "pipeskit_lambda")
        peer_import = cold_import_ms(python, layer_dir, "dagster_pipes")
        synth_s = CdkCli(PROJECT_DIR, output_dir=Path(tmp) / "cdk.out").synth()

    size = built["library"][0]
    record(NAME, "pipes layer zip (dagster-pipes + pipeskit_lambda)", "bytes", size,
           target="≤ 3 MB", met=size <= ZIP_TARGET_BYTES)  # fmt: skip
    record(NAME, "reference deployment's layer zip (+ Powertools)", "bytes",
           built["reference deployment"][0])  # fmt: skip
    kit_ms, kit_p95 = median_p95(kit_import)
    peer_ms, peer_p95 = median_p95(peer_import)
    record(NAME, "cold import in the layer (kit: pipeskit_lambda; peer: dagster_pipes)", "ms", kit_ms,
           peer=peer_ms, kit_p95=kit_p95, peer_p95=peer_p95, target=f"≤ {IMPORT_TARGET_MS:g} ms",
           met=kit_ms <= IMPORT_TARGET_MS)  # fmt: skip
    for label, (_, seconds) in built.items():
        record(NAME, f"{label} layer build from PyPI wheels (no cache)", "s", seconds)
    record(NAME, "cdk synth of the reference stack (pinned CLI)", "s", synth_s)


if __name__ == "__main__":
    main()
