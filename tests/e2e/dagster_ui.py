"""The Dagster UI on the deployed stack, for ``test_deploy.py``: ``dagster dev`` serving ``orchestration/``
(the ``dagster_ui`` fixture, in ``conftest.py``) and its GraphQL API, as the UI's launch button and run page use it.

``dagster dev`` runs as a subprocess with the local AWS's environment (as the demo, ``infra/demo.py``, sets it).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ASSET = "daily_orders_summary"
PARTITION = "2026-11-01"
CHECK = "amounts_are_positive"
FUNCTION = "pipeskit-dev-dataset-summary"

STARTUP_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 180.0
SHUTDOWN_TIMEOUT_S = 30.0

# Telemetry off; the run queue checked every second rather than every five.
DAGSTER_YAML = """\
telemetry:
  enabled: false
run_queue:
  dequeue_interval_seconds: 1
"""

WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { name repositories { name } }
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message stack }
  }
}
"""

ASSET_JOBS_QUERY = """
query AssetJobs($selector: RepositorySelector!) {
  repositoryOrError(repositorySelector: $selector) {
    __typename
    ... on Repository { assetNodes { assetKey { path } jobNames } }
    ... on PythonError { message }
  }
}
"""

# What the run page reads: the run, and its event log page by page.
RUN_PAGE_QUERY = """
query RunPage($runId: ID!, $cursor: String) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      runId
      status
      tags { key value }
      eventConnection(afterCursor: $cursor) {
        cursor
        hasMore
        events {
          __typename
          ... on MessageEvent { message stepKey }
          ... on ErrorEvent { error { message } }
          ... on MaterializationEvent {
            assetKey { path }
            partition
            metadataEntries {
              __typename
              label
              ... on TextMetadataEntry { text }
              ... on IntMetadataEntry { intValue }
              ... on FloatMetadataEntry { floatValue }
              ... on JsonMetadataEntry { jsonString }
            }
          }
          ... on AssetCheckEvaluationEvent {
            evaluation { checkName success assetKey { path } partition }
          }
        }
      }
    }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}
"""


@dataclass
class DagsterUI:
    """A running ``dagster dev``: where its webserver answers and which code location it serves."""

    port: int
    log_file: Path
    location: str = ""
    repository: str = ""

    @property
    def graphql_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def output(self, chars: int = 6000) -> str:
        """The end of ``dagster dev``'s output, for failure messages."""
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return re.sub(r"\x1b\[[0-9;]*m", "", text)[-chars:]

    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(self.graphql_url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = json.loads(response.read())
        assert not payload.get("errors"), f"GraphQL errors: {payload['errors']}"
        return payload["data"]


def dagster_executable() -> Path:
    executable = Path(sys.executable).parent / "dagster"
    # dagster (a dependency of the kit) installs the `dagster` command next to the interpreter
    assert executable.exists(), f"no `dagster` executable next to {sys.executable}: run `make install`"
    return executable


def _group_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` still alive (zombies waiting for their reaper do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat[stat.rindex(")") + 2 :].split()[:3]  # after "pid (comm) "
        if int(group) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def _wait_for_group_exit(pgid: int, timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (members := _group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return members


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C for ``dagster dev`` and everything it started; what is still there after the grace period is killed."""
    pgid = process.pid  # the leader of its own session: its group id is its pid
    if process.poll() is None:
        os.killpg(pgid, signal.SIGINT)
    try:
        process.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        process.wait(timeout=10)
    if _wait_for_group_exit(pgid, 10):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        survivors = _wait_for_group_exit(pgid, 10)
        assert not survivors, f"processes {survivors} of `dagster dev` (group {pgid}) survived SIGKILL"


def wait_until_served(ui: DagsterUI, process: subprocess.Popen[bytes]) -> None:
    """Until the webserver answers and the code location is loaded; fail with the output otherwise."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`dagster dev` exited with {process.returncode} before serving:\n{ui.output()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui.port}/server_info", timeout=5) as response:
                response.read()
            workspace = ui.query(WORKSPACE_QUERY)["workspaceOrError"]
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            last = repr(error)
        else:
            assert workspace["__typename"] == "Workspace", workspace
            entries = workspace["locationEntries"]
            for entry in entries:
                location = entry["locationOrLoadError"] or {}
                if location.get("__typename") == "PythonError":
                    pytest.fail(f"code location {entry['name']} failed to load: {location['message']}\n"
                                f"{''.join(location['stack'])}\n{ui.output()}")
            loaded = [e["locationOrLoadError"] for e in entries if e["loadStatus"] == "LOADED"]
            if loaded and loaded[0]:
                ui.location = loaded[0]["name"]
                ui.repository = loaded[0]["repositories"][0]["name"]
                return
            last = f"location entries: {entries}"
        time.sleep(0.5)
    pytest.fail(f"`dagster dev` did not serve the code location within {STARTUP_TIMEOUT_S:.0f} s ({last}):\n"
                f"{ui.output()}")


def run_page(ui: DagsterUI, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run and all its events, read as the run page reads them."""
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        run = ui.query(RUN_PAGE_QUERY, {"runId": run_id, "cursor": cursor})["runOrError"]
        assert run["__typename"] == "Run", run
        connection = run["eventConnection"]
        events += connection["events"]
        if not connection["hasMore"]:
            return run, events
        cursor = connection["cursor"]


def json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def errors_of(events: list[dict[str, Any]]) -> str:
    lines = [f"{e.get('stepKey') or ''} {e['__typename']}: {e['error']['message'].strip()}"
             for e in events if e.get("error")]
    lines += [f"{e.get('stepKey') or ''} {e['__typename']}: {e.get('message', '')}"
              for e in events if e["__typename"] in ("RunFailureEvent", "ExecutionStepFailureEvent")]
    return "\n".join(lines) or "(no error events)"


RESOURCE_QUERY = """
query Resource($selector: ResourceSelector!) {
  topLevelResourceDetailsOrError(resourceSelector: $selector) {
    __typename
    ... on ResourceDetails { configFields { name description } configuredValues { key value } }
    ... on PythonError { message }
  }
}
"""
