"""The library's shape: import contracts, no import cycle, one wire contract shared by both ends."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import get_type_hints

import grimp
import pytest

from infra.constants import PROJECT_DIR
from pipeskit.channels import CloudWatchLogsMessageReader, ResponsePayloadMessageReader, S3MessageReader
from pipeskit_lambda import channels as writers
from pipeskit_lambda.protocol import CHANNEL_PARAM, CHANNELS, Envelope, EnvelopeKeys


def test_import_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is a dev dependency"
    result = subprocess.run([lint_imports], cwd=PROJECT_DIR, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("package", ["pipeskit", "pipeskit_lambda"])
def test_no_import_cycle_inside_the_library(package: str) -> None:
    graph = grimp.build_graph(package)
    modules = sorted(graph.modules)
    cycles = [
        (a, b)
        for a in modules
        for b in graph.find_modules_directly_imported_by(a)
        if b.startswith(package) and b != a and graph.find_shortest_chain(importer=b, imported=a)
        and not a.startswith(b + ".") and not b.startswith(a + ".")  # a package importing its own modules
    ]
    assert not cycles, f"import cycles: {cycles}"


def test_every_reader_has_its_twin_writer_on_the_lambda_side() -> None:
    kit_readers = (ResponsePayloadMessageReader, CloudWatchLogsMessageReader, S3MessageReader)
    readers = {reader.channel for reader in kit_readers}
    assert readers == set(writers.WRITERS) == set(CHANNELS)


def test_readers_ask_for_their_channel_with_the_shared_key() -> None:
    for reader in (ResponsePayloadMessageReader(), CloudWatchLogsMessageReader(), S3MessageReader("bucket")):
        assert reader.messages_params()[CHANNEL_PARAM] == reader.channel
        assert writers.writer_for(reader.messages_params()).channel == reader.channel


def test_the_envelope_keys_are_the_typed_envelope() -> None:
    constants = {v for k, v in vars(EnvelopeKeys).items() if k.isupper()}
    assert constants == set(get_type_hints(Envelope))


def test_the_code_passes_ruff() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert ruff, "ruff is a dev dependency"
    paths = ["pipeskit", "layers", "infra", "orchestration", "lambdas", "tests", "bench"]
    result = subprocess.run([ruff, "check", *paths], cwd=PROJECT_DIR, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


ENVIRONMENT_READERS = {
    "pipeskit/cdk_cli.py": "hands the process's environment on to the CDK CLI it starts",
    "pipeskit/rate_limit.py": "names the budget's directory after the user where there is no uid",
}


def test_only_the_settings_mechanism_reads_the_environment() -> None:
    """Settings come from ``Settings.from_env`` (resolved once per client by ``ClientSettings.resolve``);
    no module of the library reads ``os.environ`` on its own (the local AWS has its own settings)."""
    import ast

    readers = []
    for path in sorted((PROJECT_DIR / "pipeskit").rglob("*.py")):
        relative = path.relative_to(PROJECT_DIR).as_posix()
        if relative.startswith("pipeskit/local/") or relative in ENVIRONMENT_READERS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
                readers.append(f"{relative}:{node.lineno}")
    assert not readers, f"read the environment through a settings class instead: {readers}"


def test_every_error_of_the_library_is_a_kit_error() -> None:
    """One hierarchy: each exception class the library defines derives from PipesKitError, and the ones
    that fail a Dagster step are PipesKitFailures."""
    import importlib
    import pkgutil

    from dagster import Failure

    import pipeskit
    import pipeskit_lambda
    from pipeskit.errors import PipesKitError, PipesKitFailure

    strays = []
    for package in (pipeskit, pipeskit_lambda):
        for module_info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if module_info.name.endswith(".__main__") or module_info.name == "pipeskit.local.runtime.bootstrap":
                continue  # running them is what they do
            module = importlib.import_module(module_info.name)
            for value in vars(module).values():
                if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == module.__name__:
                    if not issubclass(value, PipesKitError) or (
                        issubclass(value, Failure) and not issubclass(value, PipesKitFailure)
                    ):
                        strays.append(f"{module.__name__}.{value.__name__}")
    assert not strays, f"exceptions outside the kit's hierarchy: {strays}"


ONE_PLACE = {
    "invoke": "pipeskit/invoke.py",  # back-off, request ids, AWS errors translated
    "get_log_events": "pipeskit/cloudwatch_logs.py",  # the read budget, the log-group rule
    "filter_log_events": "pipeskit/cloudwatch_logs.py",
    "list_objects_v2": "pipeskit/channels/chunks.py",  # the S3 channel's layout
    "delete_objects": "pipeskit/channels/chunks.py",
}


@pytest.mark.parametrize("operation, home", sorted(ONE_PLACE.items()))
def test_each_aws_mechanism_is_written_once(operation: str, home: str) -> None:
    """A client call with its loop around it (back-off, paging, budget) lives in one module; the others
    call that module (the local AWS, which serves these calls, aside)."""
    import ast

    callers = []
    for path in sorted((PROJECT_DIR / "pipeskit").rglob("*.py")):
        relative = path.relative_to(PROJECT_DIR).as_posix()
        if relative == home or relative.startswith("pipeskit/local/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), relative)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == operation:
                callers.append(f"{relative}:{node.lineno}")
    assert callers == [], f"call {home} instead of a client's {operation}: {callers}"


def test_no_test_mocks_aws_in_process() -> None:
    """moto's in-process mock resets moto's state when it stops, and the session's local AWS (in the
    same test process) keeps its state there: a test that mocked would wipe the roles, layers and
    functions other tests of the process rely on. Tests use the ``local_aws`` fixture instead."""
    offenders = [
        path.relative_to(PROJECT_DIR).as_posix()
        for path in sorted((PROJECT_DIR / "tests").rglob("*.py"))
        if path.name != "test_architecture.py" and "mock_aws" in path.read_text()
    ]
    assert not offenders, f"use the local_aws fixture instead of moto's mock_aws: {offenders}"
