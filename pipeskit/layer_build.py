"""Build the pipes layer zip: pinned PyPI wheels for the Lambda platform plus the kit's helpers.

No Docker: pip resolves wheels for ``manylinux2014_x86_64`` / CPython 3.12 with
``--only-binary=:all:`` and installs them into a staging ``python/`` tree. Distributions that the
Lambda Python runtime already ships (boto3, botocore, …) are pruned. The zip is written
deterministically (sorted entries, fixed timestamps and permissions, no bytecode) so the same inputs
give a byte-identical file and CDK's asset hash does not churn; it is cached under a key derived from
those inputs.

Run ``pipeskit layer --help``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import secrets
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import ClassVar

from pipeskit_lambda.protocol import LAMBDA_RUNTIME
from pipeskit_lambda.settings import Settings, setting

from . import _pip
from ._pip import PipInstallError, pip_install_for_platform
from .errors import LayerBuildError

# Shipped by the Lambda Python runtime itself; bundling them only grows the layer.
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
)

HELPER_PACKAGE = "pipeskit_lambda"

# 1980-01-01 is the earliest timestamp a zip can hold.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def default_requirements_file() -> Path:
    """The requirements the library's own layer carries: ``dagster-pipes``, pinned."""
    return Path(str(resources.files("pipeskit") / "layer-requirements.txt"))


def default_cache_dir() -> Path:
    """The user's cache directory for layer zips (``~/.cache/pipes-lambda-kit/layers`` on Linux)."""
    from platformdirs import user_cache_path

    return user_cache_path("pipes-lambda-kit") / "layers"


def helper_package_dir() -> Path:
    """Where the installed ``pipeskit_lambda`` package lives (copied into the layer as it is)."""
    spec = importlib.util.find_spec(HELPER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LayerBuildError(f"the {HELPER_PACKAGE} package is not installed; reinstall pipes-lambda-kit")
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class LayerBuildSettings(Settings):
    """How the pipes layer is built.

    Attributes:
        build_dir: where cached zips are kept (``PIPESKIT_LAYER_BUILD_DIR``; default: the user's
            cache directory).
        requirements: pinned requirements the layer carries (``PIPESKIT_LAYER_REQUIREMENTS``;
            default: the library's, ``dagster-pipes`` only).
        platform: pip ``--platform`` of the Lambda architecture (``PIPESKIT_LAYER_PLATFORM``).
        python_version: Python version of the Lambda runtime the layer targets.
    """

    env_prefix: ClassVar[str] = "PIPESKIT_LAYER_"

    build_dir: Path | None = setting(None)
    requirements: Path | None = setting(None)
    platform: str = setting("manylinux2014_x86_64", allowed=("manylinux2014_x86_64", "manylinux2014_aarch64"))
    python_version: str = setting(LAMBDA_RUNTIME.removeprefix("python"))

    @property
    def cache_dir(self) -> Path:
        """Where cached zips are kept."""
        return self.build_dir or default_cache_dir()

    @property
    def requirements_file(self) -> Path:
        """The pinned requirements file."""
        return self.requirements or default_requirements_file()


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _helper_files(package_dir: Path) -> list[Path]:
    return sorted(
        p for p in package_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def cache_key(settings: LayerBuildSettings) -> str:
    """Hash of everything that determines the layer's bytes."""
    digest = hashlib.sha256()
    digest.update(Path(__file__).read_bytes())  # the recipe itself is an input
    digest.update(Path(_pip.__file__).read_bytes())
    for part in (settings.platform, settings.python_version, *sorted(RUNTIME_PROVIDED)):
        digest.update(part.encode() + b"\0")
    digest.update(_read_requirements(settings))
    package_dir = helper_package_dir()
    for path in _helper_files(package_dir):
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _read_requirements(settings: LayerBuildSettings) -> bytes:
    try:
        return settings.requirements_file.read_bytes()
    except OSError as error:
        raise LayerBuildError(
            f"cannot read the layer requirements {settings.requirements_file}: {error.strerror}. "
            f"Point {LayerBuildSettings.env_var('requirements')} (or --requirements) at a "
            "pinned requirements file."
        ) from None


def layer_zip_path(settings: LayerBuildSettings) -> Path:
    """Where the zip for the current inputs lives (built or not)."""
    return settings.cache_dir / f"pipes-layer-{cache_key(settings)[:20]}.zip"


def _pip_install(settings: LayerBuildSettings, target: Path) -> None:
    try:
        pip_install_for_platform(
            ["--requirement", str(settings.requirements_file)],
            target,
            platform=settings.platform,
            python_version=settings.python_version,
        )
    except PipInstallError as error:
        raise LayerBuildError(
            "pip could not install the layer requirements from "
            f"{settings.requirements_file.name} for {settings.platform}/cp{settings.python_version}:\n"
            f"{error}\nCheck that PyPI is reachable and every pin has a wheel for that platform."
        ) from None


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


def _copy_helpers(site: Path) -> None:
    package_dir = helper_package_dir()
    destination = site / HELPER_PACKAGE
    for path in _helper_files(package_dir):
        target = destination / path.relative_to(package_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def write_deterministic_zip(source_dir: Path, zip_path: Path) -> None:
    """Zip ``source_dir`` so that the same tree always gives the same bytes."""
    files = sorted(p for p in source_dir.rglob("*") if p.is_file())
    # A name of its own: several processes may build the same layer at once (the same bytes; the
    # last rename wins).
    tmp = zip_path.with_name(f".{zip_path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
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
        settings: build settings; defaults from ``PIPESKIT_LAYER_*`` environment variables.
        force: rebuild even when a cached zip for the same inputs exists.

    Returns:
        Path of the zip, whose top level is ``python/`` as Lambda layers expect.

    Raises:
        LayerBuildError: pip failed to install the pinned requirements.
    """
    settings = settings or LayerBuildSettings.from_env()
    zip_path = layer_zip_path(settings)
    if zip_path.exists() and not force:
        return zip_path
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pipes-layer-") as staging:
        site = Path(staging) / "python"
        _pip_install(settings, site)
        _prune_runtime_provided(site)
        _copy_helpers(site)
        write_deterministic_zip(Path(staging), zip_path)
    return zip_path


def export_layer(output_dir: Path, settings: LayerBuildSettings | None = None, *, force: bool = False) -> Path:
    """Build (or reuse) the layer and copy the zip into ``output_dir``; returns the copy's path."""
    built = build_layer(settings, force=force)
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / built.name
    shutil.copyfile(built, target)
    return target
