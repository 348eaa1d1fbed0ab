"""Build the pipes layer zip: pinned PyPI wheels for the Lambda platform plus the kit's helpers.

No Docker: pip resolves wheels for ``manylinux2014_x86_64`` / CPython 3.12 with
``--only-binary=:all:`` and installs them into a staging ``python/`` tree. Distributions that the
Lambda Python runtime already ships (boto3, botocore, …) are pruned. The zip is written
deterministically (sorted entries, fixed timestamps and permissions, no bytecode) so the same inputs
give a byte-identical file and CDK's asset hash does not churn; it is cached under a key derived from
those inputs.

Run ``python -m layers.build --help``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

LAYERS_DIR = Path(__file__).resolve().parent
REPO_ROOT = LAYERS_DIR.parent
REQUIREMENTS_FILE = LAYERS_DIR / "requirements.txt"
HELPER_PACKAGE_DIR = LAYERS_DIR / "pipeskit_lambda"


# Shipped by the Lambda Python runtime itself; bundling them only grows the layer.
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
)

# 1980-01-01 is the earliest timestamp a zip can hold.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class LayerBuildError(RuntimeError):
    """The layer could not be built; the message says which step failed and what to do."""


@dataclass(frozen=True)
class LayerBuildSettings:
    """How the pipes layer is built.

    Attributes:
        platform: pip ``--platform`` of the Lambda architecture.
        python_version: Python version of the Lambda runtime the layer targets.
        build_dir: where cached zips are kept (env ``PIPESKIT_LAYER_BUILD_DIR``).
        requirements_file: pinned requirements the layer carries.
        helper_package_dir: the kit's Lambda-side package, copied in as ``python/pipeskit_lambda``.
    """

    platform: str = "manylinux2014_x86_64"
    python_version: str = "3.12"
    build_dir: Path = field(
        default_factory=lambda: Path(
            os.environ.get("PIPESKIT_LAYER_BUILD_DIR", REPO_ROOT / "build" / "layers")
        )
    )
    requirements_file: Path = REQUIREMENTS_FILE
    helper_package_dir: Path = HELPER_PACKAGE_DIR


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _helper_files(settings: LayerBuildSettings) -> list[Path]:
    return sorted(
        p
        for p in settings.helper_package_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def cache_key(settings: LayerBuildSettings) -> str:
    """Hash of everything that determines the layer's bytes."""
    digest = hashlib.sha256()
    digest.update(Path(__file__).read_bytes())  # the recipe itself is an input
    for part in (settings.platform, settings.python_version, *sorted(RUNTIME_PROVIDED)):
        digest.update(part.encode() + b"\0")
    digest.update(settings.requirements_file.read_bytes())
    for path in _helper_files(settings):
        digest.update(path.relative_to(settings.helper_package_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def layer_zip_path(settings: LayerBuildSettings) -> Path:
    """Where the zip for the current inputs lives (built or not)."""
    return settings.build_dir / f"pipes-layer-{cache_key(settings)[:20]}.zip"


def _pip_install(settings: LayerBuildSettings, target: Path) -> None:
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-compile", "--no-warn-script-location",
        "--platform", settings.platform,
        "--python-version", settings.python_version,
        "--implementation", "cp",
        "--only-binary=:all:",
        "--target", str(target),
        "--requirement", str(settings.requirements_file),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LayerBuildError(
            "pip could not install the layer requirements from "
            f"{settings.requirements_file.name} for {settings.platform}/cp{settings.python_version}:\n"
            f"{result.stderr.strip()}\n"
            "Check that PyPI is reachable and every pin has a wheel for that platform."
        )


def _prune_runtime_provided(site: Path) -> None:
    """Remove distributions the Lambda runtime ships, using each one's RECORD as the file list."""
    for dist_info in sorted(site.glob("*.dist-info")):
        name = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)[0]
        if _canonical(name) not in RUNTIME_PROVIDED:
            continue
        record = dist_info / "RECORD"
        for line in record.read_text().splitlines() if record.exists() else ():
            path = site / line.split(",", 1)[0]
            if path.is_file():
                path.unlink()
        shutil.rmtree(dist_info, ignore_errors=True)
    # Console scripts (e.g. jmespath's jp.py) are of no use in a layer.
    shutil.rmtree(site / "bin", ignore_errors=True)
    for directory in sorted((p for p in site.rglob("*") if p.is_dir()), reverse=True):
        if directory.name == "__pycache__" or not any(directory.iterdir()):
            shutil.rmtree(directory, ignore_errors=True)


def _copy_helpers(settings: LayerBuildSettings, site: Path) -> None:
    destination = site / settings.helper_package_dir.name
    for path in _helper_files(settings):
        target = destination / path.relative_to(settings.helper_package_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def write_deterministic_zip(source_dir: Path, zip_path: Path) -> None:
    """Zip ``source_dir`` so that the same tree always gives the same bytes."""
    files = sorted(p for p in source_dir.rglob("*") if p.is_file())
    tmp = zip_path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source_dir).as_posix(), date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100644 & 0xFFFF) << 16
            info.create_system = 3  # Unix, whatever the building host is
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    tmp.replace(zip_path)


def build_layer(settings: LayerBuildSettings | None = None, *, force: bool = False) -> Path:
    """Build (or reuse) the pipes layer zip and return its path.

    Args:
        settings: build settings; defaults read ``PIPESKIT_LAYER_BUILD_DIR``.
        force: rebuild even when a cached zip for the same inputs exists.

    Returns:
        Path of the zip, whose top level is ``python/`` as Lambda layers expect.

    Raises:
        LayerBuildError: pip failed to install the pinned requirements.
    """
    settings = settings or LayerBuildSettings()
    zip_path = layer_zip_path(settings)
    if zip_path.exists() and not force:
        return zip_path
    settings.build_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pipes-layer-") as staging:
        site = Path(staging) / "python"
        _pip_install(settings, site)
        _prune_runtime_provided(site)
        _copy_helpers(settings, site)
        write_deterministic_zip(Path(staging), zip_path)
    return zip_path


def main(argv: list[str] | None = None) -> int:
    """Command line: build the layer and print the zip's path."""
    parser = argparse.ArgumentParser(
        prog="python -m layers.build",
        description="Build the pipes layer zip (dagster-pipes, Powertools and the kit's Lambda-side "
        "helpers) for the Lambda runtime, without Docker. Cached: prints the existing zip when the "
        "inputs have not changed.",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if a cached zip exists")
    parser.add_argument("--build-dir", type=Path, help="where to keep zips (default: build/layers)")
    args = parser.parse_args(argv)
    settings = LayerBuildSettings(build_dir=args.build_dir) if args.build_dir else LayerBuildSettings()
    try:
        path = build_layer(settings, force=args.force)
    except LayerBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
