from __future__ import annotations

import pytest

from infra.settings import SettingsError, StackSettings


def _context(values: dict) -> object:
    return values.get


def test_defaults_and_derived_names() -> None:
    settings = StackSettings()
    assert settings.stack_name == "pipeskit-dev"
    assert settings.queue_visibility_timeout_s == 6 * settings.timeout_s


def test_cdk_json_object_and_flat_override() -> None:
    settings = StackSettings.from_context(
        _context(
            {"pipeskit": {"stage": "dev", "timeout_s": 30}, "pipeskit:stage": "prod", "pipeskit:memory_mb": "1024"}
        )
    )
    assert (settings.stage, settings.timeout_s, settings.memory_mb) == ("prod", 30, 1024)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"pipeskit": {"stage": "qa"}}, "pipeskit:stage='qa'"),
        ({"pipeskit": {"timeout_s": 901}}, "pipeskit:timeout_s=901"),
        ({"pipeskit": {"log_retention_days": 10}}, "log_retention_days=10"),
        ({"pipeskit": {"memory": 10}}, "unknown settings"),
        ({"pipeskit:timeout_s": "soon"}, "pipeskit:timeout_s=.soon. is not valid"),
    ],
)
def test_bad_settings_say_which_and_how_to_fix(values: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        StackSettings.from_context(_context(values))

