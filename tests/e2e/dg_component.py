"""Drive ``dg`` over `PipesLambdaComponent` in a project of its own: for the tests that install the
kit's wheel and ``dagster-dg-cli`` into a fresh virtualenv (a project from ``create-dagster``).

Every helper takes the ``dg`` executable of that virtualenv, the project's root and the environment
to run it with, and fails with what ``dg`` printed when it exits non-zero.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

COMPONENT_TYPE = "pipeskit.PipesLambdaComponent"
"""The type name ``dg`` lists the component under (the entry point's module, then the class)."""


def run_dg(dg: Path, project: Path, *args: str, env: Mapping[str, str] | None = None, timeout_s: float = 180) -> str:
    """``dg ARGS`` in ``project``; its standard output."""
    result = subprocess.run(
        [str(dg), *args], cwd=project, env=dict(env) if env is not None else None, capture_output=True, text=True,
        timeout=timeout_s, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"dg {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def component_types(dg: Path, project: Path, env: Mapping[str, str] | None = None) -> set[str]:
    """The component types ``dg list components`` finds in the project's environment."""
    listed = json.loads(run_dg(dg, project, "list", "components", "--json", env=env))
    return {item["key"] for item in listed["items"]}


def scaffold_lambda_asset(
    dg: Path, project: Path, name: str, *, attributes: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:  # fmt: skip
    """``dg scaffold defs pipeskit.PipesLambdaComponent NAME``; ``attributes`` then replace the scaffolded
    ones of the same name (e.g. the deployed ``function_name``). Returns the ``defs.yaml``."""
    run_dg(dg, project, "scaffold", "defs", COMPONENT_TYPE, name, env=env)
    [defs_yaml] = project.glob(f"**/defs/{name}/defs.yaml")
    if attributes:
        declared = yaml.safe_load(defs_yaml.read_text())
        declared["attributes"].update(attributes)
        defs_yaml.write_text(yaml.safe_dump(declared, sort_keys=False))
    return defs_yaml


def listed_defs(dg: Path, project: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What ``dg list defs --json`` lists: ``assets``, ``asset_checks``, ``resources``, …"""
    return json.loads(run_dg(dg, project, "list", "defs", "--json", env=env))
