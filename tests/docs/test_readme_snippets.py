"""Every Python and YAML block of the README runs, the way its info string says (`tests.docs.readme`).

Blocks that belong together run together: the handler blocks are deployed under the function names
the dagster blocks invoke, and those assets are materialized against them, so a handler that reports
a check to an asset that declares none fails here, not in a reader's project.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetsDefinition, Definitions, materialize

from infra.constants import LAYER_REQUIREMENTS, PROJECT_DIR
from pipeskit.cdk_cli import CdkCli
from pipeskit.local import LocalAWS
from pipeskit.local.testing import deploy_pipes_function, lambda_role, publish_pipes_layer

from .readme import ROLES, Block, checked_blocks, of_role

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")


def test_every_python_and_yaml_block_is_tested() -> None:
    untested = [block.where() for block in checked_blocks() if block.role is None]
    assert not untested, (
        f"README blocks that say no role (add one of {', '.join(ROLES)} after the language): {untested}"
    )
    nameless = [block.where() for block in of_role("handler") if "function" not in block.options]
    assert not nameless, f"handler blocks must say function=NAME: {nameless}"
    cdk = of_role("cdk")
    assert not cdk or "continues" not in cdk[0].words, f"{cdk[0].where()} continues no app: none comes before it"


def test_every_block_parses() -> None:
    for block in checked_blocks():
        if block.language == "python":
            ast.parse(block.code, filename=block.where())


@pytest.fixture
def aws_env(local_aws: LocalAWS, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The process pointed at the local AWS, a messages bucket in ``PIPESKIT_MESSAGES_BUCKET``."""
    bucket = f"readme-messages-{os.getpid()}"
    s3 = local_aws.client("s3")
    if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=bucket)
    env = {**local_aws.env(), "PIPESKIT_MESSAGES_BUCKET": bucket}
    for name in [n for n in os.environ if n.startswith("PIPESKIT_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env


def run_dagster_blocks() -> tuple[dict[str, Any], dict[int, list[AssetsDefinition]]]:
    """Run the dagster blocks in order in one namespace; each block's new assets by its line."""
    namespace: dict[str, Any] = {"__name__": "readme_defs"}
    assets_by_block: dict[int, list[AssetsDefinition]] = {}
    for block in of_role("dagster"):
        before = {name: id(value) for name, value in namespace.items()}
        exec(compile(block.code, block.where(), "exec", dont_inherit=True), namespace)  # noqa: S102 - the README's own code
        new = [value for name, value in namespace.items() if before.get(name) != id(value)]
        assets_by_block[block.line] = [value for value in new if isinstance(value, AssetsDefinition)]
        for defs in (value for value in new if isinstance(value, Definitions)):
            Definitions.validate_loadable(defs)
    return namespace, assets_by_block


def test_the_dagster_blocks_run_in_order_and_their_definitions_load(aws_env: dict[str, str]) -> None:
    namespace, assets_by_block = run_dagster_blocks()
    assert any(assets_by_block.values()), "the README's dagster blocks define no asset"
    assert any(isinstance(value, Definitions) for value in namespace.values())


@pytest.fixture
def readme_functions(local_aws: LocalAWS, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The handler blocks, deployed with the real pipes layer under the names they give; deleted after, with
    their log groups (the names are the reference deployment's, which other tests deploy as a stack)."""
    lam = local_aws.client("lambda")
    layer = publish_pipes_layer(lam, LAYER_REQUIREMENTS)
    role = lambda_role(local_aws.client("iam"))
    deployed: dict[str, str] = {}
    for index, block in enumerate(of_role("handler")):
        name = block.options["function"]
        code = tmp_path / f"handler_{index}"
        code.mkdir()
        (code / "handler.py").write_text(block.code)
        try:
            lam.delete_function(FunctionName=name)
        except lam.exceptions.ResourceNotFoundException:
            pass
        deploy_pipes_function(
            lam, code=code, user_handler="handler.handler", layer_arn=layer, role_arn=role, name=name, timeout_s=60
        )
        deployed[name] = block.where()
    yield deployed
    _delete_functions(local_aws, deployed)


def _delete_functions(local_aws: LocalAWS, names: Iterable[str]) -> None:
    lam, logs = local_aws.client("lambda"), local_aws.client("logs")
    for name in names:
        with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
            lam.delete_function(FunctionName=name)
        with contextlib.suppress(logs.exceptions.ResourceNotFoundException):
            logs.delete_log_group(logGroupName=f"/aws/lambda/{name}")


def test_the_handler_and_dagster_blocks_work_together(
    aws_env: dict[str, str], readme_functions: dict[str, str]
) -> None:
    """Each block marked ``materialize`` runs its assets against the README's own handlers."""
    namespace, assets_by_block = run_dagster_blocks()
    chosen = [block for block in of_role("dagster") if "materialize" in block.words]
    assert chosen, "no dagster block is marked materialize"
    for block in chosen:
        invoked = [name for name in readme_functions if name in block.code]
        assert invoked, f"{block.where()} invokes none of the README's handlers {sorted(readme_functions)}"
        for asset_def in assets_by_block[block.line]:
            resources = {key: namespace[key] for key in asset_def.required_resource_keys if key in namespace}
            result = materialize([asset_def], resources=resources, raise_on_error=False)
            failures = [event.step_failure_data.error for event in result.all_events if event.is_step_failure]
            assert result.success, f"{block.where()}: {asset_def.key.to_user_string()} failed: {failures}"
            materialized = result.asset_materializations_for_node(asset_def.node_def.name)
            assert materialized, f"{block.where()}: {asset_def.key.to_user_string()} materialized nothing"
            for spec in asset_def.check_specs:
                evaluations = [e for e in result.get_asset_check_evaluations() if e.check_name == spec.name]
                assert evaluations and all(e.passed for e in evaluations), f"{spec.name} did not pass"


def test_the_run_blocks_run(local_aws: LocalAWS, tmp_path: Path) -> None:
    for block in of_role("run"):
        if "needs" in block.options:
            continue  # run where what they need is made (the cdk test)
        script = tmp_path / f"block_{block.line}.py"
        script.write_text(block.code)
        env = {**os.environ, **local_aws.env(), "PYTHONPATH": f"{PROJECT_DIR}:{PROJECT_DIR / 'layers'}"}
        result = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{block.where()} failed:\n{result.stdout}\n{result.stderr}"


def test_the_pytest_blocks_pass(local_aws: LocalAWS) -> None:
    for block in of_role("pytest"):
        namespace: dict[str, Any] = {}
        exec(compile(block.code, block.where(), "exec", dont_inherit=True), namespace)  # noqa: S102 - the README's own code
        tests = [value for name, value in namespace.items() if name.startswith("test_") and callable(value)]
        assert tests, f"{block.where()} defines no test"
        for test in tests:
            test(local_aws)


def cdk_apps() -> list[tuple[Block, str]]:
    """Each whole cdk app: a cdk block with the blocks marked ``continues`` after it appended (before its
    ``app.synth()``)."""
    apps: list[list[Block]] = []
    for block in of_role("cdk"):
        if "continues" in block.words:
            apps[-1].append(block)
        else:
            apps.append([block])
    return [(app[0], _synth_last("\n".join(block.code for block in app))) for app in apps]


def _synth_last(code: str) -> str:
    lines = [line for line in code.splitlines() if line.strip() != "app.synth()"]
    return "\n".join(lines) + "\napp.synth()\n"


def _handler_files(code: str) -> set[str]:
    """``CODE_DIR/MODULE.py`` of every call naming ``code_dir=`` and ``handler="MODULE.function"``."""
    files = set()
    for node in ast.walk(ast.parse(code)):
        if not isinstance(node, ast.Call):
            continue
        given = {k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)}
        if isinstance(given.get("handler"), str) and isinstance(given.get("code_dir"), str):
            files.add(f"{given['code_dir']}/{given['handler'].rsplit('.', 1)[0].replace('.', '/')}.py")
    return files


def _write_app(project: Path, code: str) -> None:
    """``app.py`` and a stub of each handler module it packages."""
    for name in _handler_files(code):
        stub = project / name
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("def handler(event, context):\n    return {}\n")
    (project / "app.py").write_text(code)


@pytest.mark.parametrize("index", range(len(cdk_apps())))
def test_the_cdk_blocks_synthesize(index: int, tmp_path: Path) -> None:
    first, code = cdk_apps()[index]
    _write_app(tmp_path, code)
    env = {
        **os.environ,
        "CDK_OUTDIR": str(tmp_path / "cdk.out"),
        "PYTHONPATH": f"{PROJECT_DIR}:{PROJECT_DIR / 'layers'}",
        "PATH": f"{PROJECT_DIR / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}",  # jsii on the pinned Node
    }
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{first.where()} does not synthesize:\n{textwrap.indent(result.stderr, '  ')}"
    templates = list((tmp_path / "cdk.out").glob("*.template.json"))
    assert templates, f"{first.where()} synthesized no stack"


def test_the_blocks_that_need_a_cdk_project_run_in_one(local_aws: LocalAWS, tmp_path: Path) -> None:
    """The blocks marked ``needs=cdk-project`` run in the README's app that stands before them, made a CDK
    project (``cdk.json``) on the bootstrapped local AWS: they deploy it. The stack goes again after."""
    needing = [block for block in of_role("run") if block.options.get("needs") == "cdk-project"]
    assert needing, "no block needs a cdk project: drop this test"
    cdk = str(PROJECT_DIR / "node_modules" / ".bin" / "cdk")  # the checkout's pin, not a first install
    python_path = f"{PROJECT_DIR}:{PROJECT_DIR / 'layers'}"
    env = {**os.environ, **local_aws.env(), "PIPESKIT_CDK": cdk, "PYTHONPATH": python_path}
    cloudformation = local_aws.client("cloudformation")
    for block in needing:
        first, code = [(app, code) for app, code in cdk_apps() if app.line < block.line][-1]
        project = tmp_path / f"block_{block.line}"
        project.mkdir()
        _write_app(project, code)
        (project / "cdk.json").write_text(json.dumps({"app": f"{sys.executable} app.py"}))
        CdkCli(project, cdk=cdk).bootstrap(local_aws.settings.account_id, local_aws.settings.region, env)
        (project / "block.py").write_text(block.code.replace("http://localhost:4566", local_aws.endpoint_url))
        result = subprocess.run(
            [sys.executable, "block.py"], cwd=project, env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{block.where()} failed:\n{result.stdout}\n{result.stderr[-4000:]}"
        outputs = json.loads(next(project.glob("**/outputs.json")).read_text())
        for stack in outputs:
            [described] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
            assert described["StackStatus"].endswith("_COMPLETE"), f"{first.where()}: {described['StackStatus']}"
            functions = [r["PhysicalResourceId"] for r in cloudformation.list_stack_resources(StackName=stack)[
                "StackResourceSummaries"] if r["ResourceType"] == "AWS::Lambda::Function"]  # fmt: skip
            assert functions, f"{first.where()}'s app deployed no function"
            cloudformation.delete_stack(StackName=stack)
            _delete_functions(local_aws, functions)
