"""The wheel works anywhere: built, installed into a fresh virtualenv, used in a project of its own.

The README's "Your own project, from zero" runs as written first: the built wheel, a new directory
outside the checkout, a fresh virtualenv, the user's own handler and CDK app, two deploys to the local
AWS and the asset materialized through the component after each. Its section's ``bash from-zero``
blocks run in order in one shell; its ``file=PATH`` blocks are written where they stand. What the
shell gets from this machine is what a new user has: ``PATH`` without the checkout's virtualenv or
``node_modules``, no ``PIPESKIT_*`` or ``AWS_*`` variable, and pip finding ``pipes-lambda-kit`` as
the wheel just built (``PIP_FIND_LINKS``, ``UV_FIND_LINKS``) — the only difference from a release.

The other tests use the virtualenv it made (the wheel with both extras) from a directory with its own
``orchestration/`` and ``infra/`` packages (the names the reference deployment uses), so any leak of the
repository's layout into the wheel shows up as a clash; a second virtualenv holds the wheel alone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from infra.constants import PROJECT_DIR
from pipeskit.cdk_cli import CdkCli
from pipeskit_lambda.protocol import ENTRYPOINT_HANDLER, HANDLER_ENV_VAR
from tests.docs.readme import Block, section_blocks

pytestmark = pytest.mark.e2e

SECTION = "Your own project, from zero"
HEREDOC_END = "PIPESKIT_README_EOF"


def section_script(blocks: list[Block]) -> str:
    """One bash script: the commands of the section and its files, in the README's order."""
    lines = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]  # the background local AWS
    for block in blocks:
        lines.append(f'echo "@@ line {block.line} $(date +%s.%N)"')  # when each block starts, for the timings
        if "file" in block.options:
            path = block.options["file"]
            assert HEREDOC_END not in block.code
            lines += [f"mkdir -p \"$(dirname '{path}')\"", f"cat > '{path}' <<'{HEREDOC_END}'", block.code.rstrip("\n"),
                      HEREDOC_END]  # fmt: skip
        elif block.language == "bash" and "from-zero" in block.words:
            lines.append(block.code)
    return "\n".join(lines) + "\n"


def user_environment(wheel_dir: Path, home: Path) -> dict[str, str]:
    """This machine's environment as a new user's shell has it: nothing of the checkout or the test run."""
    checkout = str(PROJECT_DIR)
    path = [entry for entry in os.environ["PATH"].split(os.pathsep) if entry and not entry.startswith(checkout)]
    path = [entry for entry in path if Path(entry) != Path(sys.executable).parent]
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PIPESKIT_", "AWS_", "DAGSTER_", "PYTEST", "VIRTUAL_ENV", "PYTHON", "CDK_"))
    }
    return {
        **kept,
        "PATH": os.pathsep.join(path),
        "PIP_FIND_LINKS": str(wheel_dir),
        "UV_FIND_LINKS": str(wheel_dir),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIPESKIT_LOCAL_PORT": "0",  # a free port: CI may run other local AWSs
        "DAGSTER_HOME": str(home / "dagster-home"),
    }

USER_APP = '''
import aws_cdk as cdk
from aws_cdk import RemovalPolicy

from pipeskit.cdk import PipesFunction, PipesLayer

import infra  # the user's own package of that name

app = cdk.App()
stack = cdk.Stack(app, "my-pipes")
layer = PipesLayer(stack, "PipesLayer")
PipesFunction(
    stack, "Report",
    function_name="my-pipes-report",
    code_dir="src",
    handler="report.handler",
    layer=layer,
    memory_mb=512,
    timeout_s=60,
    log_retention_days=14,
    removal_policy=RemovalPolicy.DESTROY,
)
app.synth()
'''

DOCS_STYLE_HANDLER = '''
from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes


def handler(event, _context):
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        pipes.report_asset_materialization(metadata={"rows": {"raw_value": 1, "type": "int"}})
'''


@dataclass(frozen=True)
class UserProject:
    """A directory with the user's own packages and a virtualenv holding only the wheel."""

    root: Path
    python: Path
    env: dict[str, str]

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            list(command), cwd=self.root, env=self.env, capture_output=True, text=True, check=False
        )
        if check:
            assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
        return result

    @property
    def bin(self) -> Path:
        return self.python.parent

    @property
    def environment(self) -> Path:
        """The project's virtualenv."""
        return self.bin.parent


def user_env(root: Path, environment: Path) -> dict[str, str]:
    """This process's environment for a project in ``root`` using the virtualenv ``environment``."""
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(root / ".cache"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "VIRTUAL_ENV": str(environment),
    }
    env.pop("PIPESKIT_LAYER_BUILD_DIR", None)
    env.pop("PYTHONPATH", None)
    return env


def user_project(root: Path, requirement: str) -> UserProject:
    """A project in ``root`` with a fresh virtualenv where only ``requirement`` (the wheel) is installed."""
    environment = root / ".venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    project = UserProject(root, python, user_env(root, environment))
    project.run(sys.executable, "-m", "uv", "pip", "install", "--quiet", "--python", str(python), requirement)
    return project


@dataclass(frozen=True)
class FromZero:
    """The README section's run: where it ran, what it printed, how long it took."""

    home: Path
    project: Path
    output: str
    seconds: float
    spans: dict[int, float]
    """Seconds each README block took, by its line."""


@pytest.fixture(scope="module")
def from_zero(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> FromZero:
    """The README's "Your own project, from zero", run as written by a new user's shell."""
    home = tmp_path_factory.mktemp("from-zero")
    (home / "dagster-home").mkdir()
    blocks = section_blocks(SECTION)
    script = home / "from-zero.sh"
    script.write_text(section_script(blocks))
    started = time.monotonic()
    process = subprocess.run(
        ["bash", str(script)], cwd=home, env=user_environment(wheel.parent, home), capture_output=True, text=True,
        timeout=1200, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    output = process.stdout + process.stderr
    (home / "from-zero.log").write_text(output)
    assert process.returncode == 0, f"the section failed after {seconds:.0f} s:\n{output[-6000:]}"
    marks = [(int(line), float(at)) for line, at in re.findall(r"^@@ line (\d+) ([\d.]+)$", process.stdout, re.M)]
    spans = {line: round(end - start, 1) for (line, start), (_, end) in zip(marks, marks[1:], strict=False)}
    [first_command] = re.findall(r"^mkdir (\S+) && cd ", blocks[0].code, re.M)
    return FromZero(home, home / first_command, output, seconds, spans)


@pytest.fixture(scope="module")
def project(from_zero: FromZero, tmp_path_factory: pytest.TempPathFactory) -> UserProject:
    """The from-zero virtualenv (the wheel with both extras), used from a directory with the user's own
    ``orchestration/`` and ``infra/`` packages and a handler."""
    root = tmp_path_factory.mktemp("user-project")
    for package in ("orchestration", "infra"):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text(f"OWNER = 'user'  # the user's own {package}\n")
    (root / "src").mkdir()
    (root / "src" / "report.py").write_text(DOCS_STYLE_HANDLER)
    environment = from_zero.project / ".venv"
    return UserProject(root, environment / "bin" / "python", user_env(root, environment))


@pytest.fixture(scope="module")
def core_project(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> UserProject:
    """The wheel without extras: what a Dagster code location installs."""
    return user_project(tmp_path_factory.mktemp("core-project"), str(wheel))


def test_the_wheel_ships_two_import_names_typed_and_licensed(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"pipeskit", "pipeskit_lambda"}
    assert {"pipeskit/py.typed", "pipeskit_lambda/py.typed", "pipeskit_lambda/protocol.py"} <= set(names)
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    assert "License-Expression: Apache-2.0" in zipfile.ZipFile(wheel).read(metadata).decode()


def test_the_library_imports_next_to_the_users_own_packages(project: UserProject) -> None:
    script = (
        "import orchestration, infra, pipeskit, pipeskit_lambda.protocol\n"
        "from pipeskit import PipesLambdaClient, CloudWatchLogsMessageReader, LambdaFunctionError\n"
        "from pipeskit.cdk import PipesLayer, PipesFunction\n"
        "from pipeskit.local import LocalAWS\n"
        "assert orchestration.OWNER == infra.OWNER == 'user'\n"
        "print(pipeskit.__file__)\n"
    )
    installed = Path(project.run(str(project.python), "-c", script).stdout.strip())
    assert project.environment in installed.parents, "the wheel's pipeskit, not the repository's"
    assert project.run(str(project.bin / "pipeskit"), "--version").stdout.strip() == "pipeskit 0.1.0"


def test_pipeskit_layer_writes_the_zip_where_asked_and_caches_in_the_users_cache(project: UserProject) -> None:
    printed = project.run(str(project.bin / "pipeskit"), "layer", "--output", "dist").stdout.strip()
    zip_path = project.root / printed if not Path(printed).is_absolute() else Path(printed)
    assert zip_path.parent == project.root / "dist" and zip_path.exists()
    names = set(zipfile.ZipFile(zip_path).namelist())
    assert {"python/pipeskit_lambda/entrypoint.py", "python/dagster_pipes/__init__.py"} <= names
    assert list((project.root / ".cache" / "pipes-lambda-kit" / "layers").glob("pipes-layer-*.zip"))
    site_packages = next((project.environment / "lib").glob("python3*/site-packages"))
    assert not (site_packages / "build").exists(), "nothing is written into site-packages"


def test_pipeskit_layer_builds_the_layer_without_any_extra(core_project: UserProject) -> None:
    extras = "('aws_cdk', 'constructs', 'cdk_nag', 'moto')"
    absent = f"import importlib.util as u; print([m for m in {extras} if u.find_spec(m)])"
    assert core_project.run(str(core_project.python), "-c", absent).stdout.strip() == "[]", "no extra installed"
    pipeskit = str(core_project.bin / "pipeskit")
    assert "--requirements" in core_project.run(pipeskit, "layer", "--help").stdout
    printed = core_project.run(pipeskit, "layer", "--output", "dist").stdout.strip()
    zip_path = Path(printed) if Path(printed).is_absolute() else core_project.root / printed
    assert zip_path.parent == core_project.root / "dist" and zip_path.exists()
    names = set(zipfile.ZipFile(zip_path).namelist())
    assert {"python/pipeskit_lambda/entrypoint.py", "python/dagster_pipes/__init__.py"} <= names
    script = "from pipeskit.layer_build import build_layer, LayerBuildSettings; print(build_layer())"
    assert Path(core_project.run(str(core_project.python), "-c", script).stdout.strip()).name == zip_path.name


def test_pipeskit_local_serves_from_the_wheel(project: UserProject) -> None:
    process = subprocess.Popen(
        [str(project.bin / "pipeskit"), "local", "--port", "0"],
        cwd=project.root,
        env=project.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        exports, unset = {}, []
        while not unset:  # the exports, then `unset AWS_SESSION_TOKEN` (the administrator's keys are long-term)
            line = process.stdout.readline().strip()
            assert line, process.stderr.read() if process.stderr else "no output"
            if line.startswith("unset "):
                unset.append(line.removeprefix("unset "))
                continue
            name, value = line.removeprefix("export ").split("=", 1)
            exports[name] = value
        assert unset == ["AWS_SESSION_TOKEN"] and "AWS_SESSION_TOKEN" not in exports
        sts = boto3.client(
            "sts",
            endpoint_url=exports["AWS_ENDPOINT_URL"],
            region_name=exports["AWS_REGION"],
            aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        )
        # IAM is enforced by default: the printed keys are the administrator's
        assert sts.get_caller_identity()["Arn"] == "arn:aws:iam::123456789012:user/pipeskit-local-admin"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_reference_deployments_demo_is_not_in_the_wheel(wheel: Path, project: UserProject) -> None:
    assert not [name for name in zipfile.ZipFile(wheel).namelist() if "demo" in name]
    result = project.run(str(project.bin / "pipeskit"), "demo", check=False)
    assert result.returncode == 2
    assert "invalid choice: 'demo'" in result.stderr


@pytest.fixture(scope="module")
def synthesized(project: UserProject) -> Iterator[dict]:
    (project.root / "app.py").write_text(USER_APP)
    (project.root / "cdk.json").write_text(json.dumps({"app": f"{project.python} app.py"}))
    bin_dir = PROJECT_DIR / "node_modules" / ".bin"  # the repository's pinned CDK CLI and Node.js
    cli = CdkCli(project.root, cdk=str(bin_dir / "cdk"), output_dir=project.root / "cdk.out")
    env = {**project.env, "PATH": os.pathsep.join([str(bin_dir), project.env["PATH"]])}
    cli.synth(env)
    yield json.loads((project.root / "cdk.out" / "my-pipes.template.json").read_text())


def test_a_cdk_app_of_the_users_own_synthesizes_with_the_constructs(synthesized: dict) -> None:
    resources = synthesized["Resources"].values()
    [function] = [r for r in resources if r["Type"] == "AWS::Lambda::Function"]
    assert function["Properties"]["Handler"] == ENTRYPOINT_HANDLER
    assert function["Properties"]["Environment"]["Variables"][HANDLER_ENV_VAR] == "report.handler"
    assert function["Properties"]["Runtime"] == "python3.12"
    assert [r for r in resources if r["Type"] == "AWS::Lambda::LayerVersion"]


def test_the_from_zero_section_says_what_it_runs() -> None:
    blocks = section_blocks(SECTION)
    commands = [block for block in blocks if block.language == "bash"]
    assert commands and all("from-zero" in block.words for block in commands), (
        f"every bash block of {SECTION!r} must be marked from-zero (it runs in CI): "
        f"{[block.where() for block in commands if 'from-zero' not in block.words]}"
    )
    files = [block.options["file"] for block in blocks if "file" in block.options]
    assert any(name.endswith("defs.yaml") for name in files), "the section declares no component"


def test_your_own_project_from_zero_deploys_twice_and_materializes_the_edit(from_zero: FromZero) -> None:
    print(f"from zero: {from_zero.seconds:.0f} s in all; seconds per README block (by line): {from_zero.spans}")
    versions = re.findall(r"report version (\d+)", from_zero.output)
    assert versions and versions[0] == "1" and versions[-1] == "2", (
        f"the materializations did not run the first and then the edited handler: {versions}\n"
        f"{from_zero.output[-4000:]}"
    )
