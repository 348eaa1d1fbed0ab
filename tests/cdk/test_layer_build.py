"""The pipes layer build: contents, exclusions, determinism and caching (real pip, real wheels)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from infra.constants import LAYER_REQUIREMENTS
from pipeskit.layer_build import LayerBuildSettings, build_layer, layer_zip_path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[LayerBuildSettings, Path]:
    """The reference deployment's layer: the library's plus Powertools for its handlers."""
    settings = LayerBuildSettings(
        build_dir=tmp_path_factory.mktemp("layer-a"), requirements=LAYER_REQUIREMENTS
    )
    return settings, build_layer(settings)


def test_layer_holds_dagster_pipes_powertools_and_the_kit_helpers(built) -> None:
    _, path = built
    names = zipfile.ZipFile(path).namelist()
    assert "python/dagster_pipes/__init__.py" in names
    assert any(n.startswith("python/aws_lambda_powertools/logging/") for n in names)
    assert "python/pipeskit_lambda/__init__.py" in names
    assert "python/pipeskit_lambda/protocol.py" in names
    assert all(n.startswith("python/") for n in names)


def test_the_library_layer_carries_dagster_pipes_and_the_kit_only(tmp_path: Path) -> None:
    path = build_layer(LayerBuildSettings(build_dir=tmp_path))
    top_level = {n.split("/")[1] for n in zipfile.ZipFile(path).namelist()}
    assert {"dagster_pipes", "pipeskit_lambda"} <= top_level
    assert not {n for n in top_level if n.startswith("aws_lambda_powertools")}
    assert path.parent == tmp_path


def test_layer_excludes_what_the_lambda_runtime_ships(built) -> None:
    _, path = built
    top_level = {n.split("/")[1] for n in zipfile.ZipFile(path).namelist()}
    for shipped in ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six.py", "bin"):
        assert shipped not in top_level
    assert not [n for n in zipfile.ZipFile(path).namelist() if n.endswith(".pyc") or "__pycache__" in n]


def test_layer_build_is_deterministic(built, tmp_path: Path) -> None:
    _, first = built
    second = build_layer(settings_in(built[0], tmp_path), force=True)
    assert first.name == second.name
    assert first.read_bytes() == second.read_bytes()


def test_layer_build_is_cached(built) -> None:
    settings, path = built
    before = path.stat().st_mtime_ns
    assert build_layer(settings) == path
    assert path.stat().st_mtime_ns == before


def test_changed_inputs_change_the_cache_key(built, tmp_path: Path) -> None:
    settings, path = built
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(LAYER_REQUIREMENTS.read_text() + "# a comment is an input too\n")
    assert layer_zip_path(settings.replace(requirements=requirements)) != path
    assert layer_zip_path(settings.replace(platform="manylinux2014_aarch64")) != path


def test_the_cache_lives_in_the_users_cache_dir_unless_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PIPESKIT_LAYER_BUILD_DIR", raising=False)
    assert LayerBuildSettings.from_env().cache_dir == tmp_path / "cache" / "pipes-lambda-kit" / "layers"
    monkeypatch.setenv("PIPESKIT_LAYER_BUILD_DIR", str(tmp_path / "elsewhere"))
    assert LayerBuildSettings.from_env().cache_dir == tmp_path / "elsewhere"


def test_a_missing_requirements_file_is_named(tmp_path: Path) -> None:
    from pipeskit.layer_build import LayerBuildError

    missing = tmp_path / "nope.txt"
    with pytest.raises(LayerBuildError, match=r"nope\.txt.*PIPESKIT_LAYER_REQUIREMENTS"):
        build_layer(LayerBuildSettings(build_dir=tmp_path, requirements=missing))


def settings_in(settings: LayerBuildSettings, build_dir: Path) -> LayerBuildSettings:
    return settings.replace(build_dir=build_dir)
