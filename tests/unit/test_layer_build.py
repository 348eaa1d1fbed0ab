"""The pipes layer build: contents, exclusions, determinism and caching (real pip, real wheels)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from layers.build import LayerBuildSettings, build_layer


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[LayerBuildSettings, Path]:
    settings = LayerBuildSettings(build_dir=tmp_path_factory.mktemp("layer-a"))
    return settings, build_layer(settings)


def test_layer_holds_dagster_pipes_powertools_and_the_kit_helpers(built) -> None:
    _, path = built
    names = zipfile.ZipFile(path).namelist()
    assert "python/dagster_pipes/__init__.py" in names
    assert any(n.startswith("python/aws_lambda_powertools/logging/") for n in names)
    assert "python/pipeskit_lambda/__init__.py" in names
    assert all(n.startswith("python/") for n in names)


def test_layer_excludes_what_the_lambda_runtime_ships(built) -> None:
    _, path = built
    top_level = {n.split("/")[1] for n in zipfile.ZipFile(path).namelist()}
    for shipped in ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six.py", "bin"):
        assert shipped not in top_level
    assert not [n for n in zipfile.ZipFile(path).namelist() if n.endswith(".pyc") or "__pycache__" in n]


def test_layer_build_is_deterministic(built, tmp_path: Path) -> None:
    _, first = built
    second = build_layer(LayerBuildSettings(build_dir=tmp_path), force=True)
    assert first.name == second.name
    assert first.read_bytes() == second.read_bytes()


def test_layer_build_is_cached(built) -> None:
    settings, path = built
    before = path.stat().st_mtime_ns
    assert build_layer(settings) == path
    assert path.stat().st_mtime_ns == before


def test_changed_inputs_change_the_cache_key(built, tmp_path: Path) -> None:
    settings, path = built
    helpers = tmp_path / "pipeskit_lambda"
    helpers.mkdir()
    (helpers / "__init__.py").write_text("VALUE = 2\n")
    other = LayerBuildSettings(build_dir=settings.build_dir, helper_package_dir=helpers)
    from layers.build import layer_zip_path

    assert layer_zip_path(other) != path
