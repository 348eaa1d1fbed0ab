"""The one settings mechanism: typed parsing, one prefix per class, clear refusals, and the README tables."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import pytest

from infra.constants import PROJECT_DIR
from infra.settings import StackSettings
from orchestration.definitions import DeploymentSettings as ReferenceDeploymentSettings
from pipeskit.cdk_cli import CdkCliSettings
from pipeskit.layer_build import LayerBuildSettings
from pipeskit.local.settings import LocalAWSSettings
from pipeskit.settings import (
    ContextSettings,
    DeploymentSettings,
    FanOutSettings,
    LambdaClientSettings,
    LogsReaderSettings,
    S3ReaderSettings,
)
from pipeskit_lambda.settings import FunctionSettings, Settings, SettingsError, setting

ENV_SETTINGS: tuple[type[Settings], ...] = (
    LambdaClientSettings,
    LogsReaderSettings,
    S3ReaderSettings,
    ContextSettings,
    FunctionSettings,
    LayerBuildSettings,
    CdkCliSettings,
    DeploymentSettings,
    ReferenceDeploymentSettings,
    LocalAWSSettings,
    FanOutSettings,
)


@dataclass(frozen=True)
class Example(Settings):
    env_prefix: ClassVar[str] = "EXAMPLE_"

    enabled: bool = False
    mode: Literal["fast", "safe"] = "safe"
    ratio: float = setting(0.5, minimum=0.0, maximum=1.0)
    delays: tuple[float, ...] = (1.0, 2.0)
    where: Path | None = None


@pytest.mark.parametrize("raw, value", [("true", True), ("TRUE", True), ("1", True), ("false", False), ("0", False)])
def test_booleans_parse_true_false_1_0(raw: str, value: bool) -> None:
    assert Example.from_env({"EXAMPLE_ENABLED": raw}).enabled is value


def test_every_type_parses_from_the_environment() -> None:
    settings = Example.from_env(
        {"EXAMPLE_MODE": "fast", "EXAMPLE_RATIO": "0.25", "EXAMPLE_DELAYS": "0.1, 0.2", "EXAMPLE_WHERE": "/tmp/x"}
    )
    parsed = (settings.mode, settings.ratio, settings.delays, settings.where)
    assert parsed == ("fast", 0.25, (0.1, 0.2), Path("/tmp/x"))


def test_overrides_win_over_the_environment_and_none_means_not_given() -> None:
    settings = Example.from_env({"EXAMPLE_RATIO": "0.25"}, ratio=0.75, mode=None)
    assert (settings.ratio, settings.mode) == (0.75, "safe")


@pytest.mark.parametrize(
    "env, message",
    [
        ({"EXAMPLE_ENABLED": "yes"}, "EXAMPLE_ENABLED='yes' is not valid: it must be one of true, false, 1, 0"),
        ({"EXAMPLE_MODE": "quick"}, "EXAMPLE_MODE='quick' is not valid: it must be one of 'fast', 'safe'"),
        ({"EXAMPLE_RATIO": "lots"}, "EXAMPLE_RATIO='lots' is not valid: it must be a float"),
        ({"EXAMPLE_RATIO": "2"}, "EXAMPLE_RATIO=2.0 is not valid: the maximum is 1.0"),
    ],
)
def test_bad_values_name_the_variable_and_what_it_accepts(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Example.from_env(env)


def test_an_override_is_named_by_its_source_and_the_environment_by_its_variable() -> None:
    """A CLI passes ``sources={field: flag}``: a bad flag value is named as the flag, with the range."""
    with pytest.raises(SettingsError) as raised:
        Example.from_env({}, sources={"ratio": "--ratio"}, ratio=2.0)
    assert str(raised.value) == (
        "--ratio 2.0 is not valid: the maximum is 1.0 (allowed: 0.0 to 1.0). Pass an allowed value, or leave "
        "--ratio out for the default."
    )
    with pytest.raises(SettingsError, match=re.escape("EXAMPLE_RATIO=-1.0 is not valid: the minimum is 0.0")):
        Example.from_env({"EXAMPLE_RATIO": "-1"}, sources={"ratio": "--ratio"}, ratio=None)
    assert Example.from_env({"EXAMPLE_RATIO": "-1"}, sources={"ratio": "--ratio"}, ratio=0.25).ratio == 0.25


def test_a_mapping_with_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(SettingsError, match=r"unknown settings \[.speed.\] in cfg; known: .*.ratio."):
        Example.from_mapping({"speed": 1}, source="cfg")


def test_each_class_has_one_prefix() -> None:
    for cls in ENV_SETTINGS:
        assert all(var.startswith(cls.env_prefix) for var in cls.env_vars().values()), cls
    assert LocalAWSSettings.env_prefix == "PIPESKIT_LOCAL_"


def _readme_table_cells() -> set[str]:
    """Every `code` span in a table row of the README."""
    rows = [line for line in (PROJECT_DIR / "README.md").read_text().splitlines() if line.startswith("|")]
    return {span for row in rows for span in re.findall(r"`([^`]+)`", row)}


@pytest.mark.parametrize("cls", ENV_SETTINGS, ids=lambda c: c.__name__)
def test_every_setting_is_in_a_readme_table(cls: type[Settings]) -> None:
    cells = " ".join(_readme_table_cells())
    missing = [var for var in cls.env_vars().values() if var not in cells]
    assert not missing, f"add {missing} to a settings table in README.md"


def test_every_stack_setting_is_in_the_readme_stack_table() -> None:
    cells = _readme_table_cells()
    missing = [f.name for f in dataclasses.fields(StackSettings) if f.name not in cells]
    assert not missing, f"add {missing} to the stack settings table in README.md"
