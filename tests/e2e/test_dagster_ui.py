"""The Dagster UI on the deployed stack: ``dagster dev`` serves ``orchestration/``, a run goes through its GraphQL API.

The stack is deployed to the local AWS with the real CDK CLI (as in ``test_deploy.py``); ``dagster dev`` runs
as a subprocess with the local AWS's environment (as the demo, ``infra/demo.py``, sets it); the run is launched and read
back through the webserver's GraphQL API, as the UI's launch button and run page do.
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
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.constants import PROJECT_DIR
from infra.demo import DEMO_MODULE, DemoReport, orchestrator_env
from pipeskit.local import LocalAWS
from pipeskit.local.testing import free_port

pytestmark = pytest.mark.e2e

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


def _dagster_executable() -> Path:
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


def _stop_process_group(process: subprocess.Popen[bytes]) -> None:
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


def _wait_until_served(ui: DagsterUI, process: subprocess.Popen[bytes]) -> None:
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


@pytest.fixture(scope="module")
def dagster_ui(
    deployed: DemoReport, local_aws: LocalAWS, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DagsterUI]:
    """``dagster dev -m orchestration.definitions`` in the project root, pointed at the local AWS."""
    executable = _dagster_executable()
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    ui = DagsterUI(port=free_port(), log_file=home / "dagster-dev.log")
    # what the demo (infra/demo.py) gives the code location: the local AWS's endpoint, the keys of an IAM user
    # holding only the stack's OrchestratorPolicy, the region
    env = {key: value for key, value in os.environ.items() if key != "AWS_SESSION_TOKEN"}
    env = {**env, **orchestrator_env(local_aws, deployed), "DAGSTER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    command = [str(executable), "dev", "-m", DEMO_MODULE, "-d", str(PROJECT_DIR),
               "-h", "127.0.0.1", "-p", str(ui.port)]
    with ui.log_file.open("wb") as log:
        process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_served(ui, process)
        yield ui
    finally:
        _stop_process_group(process)


def _run_page(ui: DagsterUI, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
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


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _errors(events: list[dict[str, Any]]) -> str:
    lines = [f"{e.get('stepKey') or ''} {e['__typename']}: {e['error']['message'].strip()}"
             for e in events if e.get("error")]
    lines += [f"{e.get('stepKey') or ''} {e['__typename']}: {e.get('message', '')}"
              for e in events if e["__typename"] in ("RunFailureEvent", "ExecutionStepFailureEvent")]
    return "\n".join(lines) or "(no error events)"


def test_ui_serves_the_code_location(dagster_ui: DagsterUI) -> None:
    assert dagster_ui.location == DEMO_MODULE
    data = dagster_ui.query(ASSET_JOBS_QUERY, {"selector": {"repositoryLocationName": dagster_ui.location,
                                                             "repositoryName": dagster_ui.repository}})
    nodes = data["repositoryOrError"]["assetNodes"]
    assert {"/".join(n["assetKey"]["path"]) for n in nodes} >= {
        "daily_orders_summary", "orders_emea_summary", "orders_apac_summary", "docs_style_metric"
    }


RESOURCE_QUERY = """
query Resource($selector: ResourceSelector!) {
  topLevelResourceDetailsOrError(resourceSelector: $selector) {
    __typename
    ... on ResourceDetails { configFields { name description } configuredValues { key value } }
    ... on PythonError { message }
  }
}
"""


def test_the_client_resource_shows_its_configuration_in_the_ui(dagster_ui: DagsterUI) -> None:
    def details(resource: str) -> dict[str, Any]:
        selector = {"repositoryLocationName": dagster_ui.location, "repositoryName": dagster_ui.repository,
                    "resourceName": resource}  # fmt: skip
        found = dagster_ui.query(RESOURCE_QUERY, {"selector": selector})["topLevelResourceDetailsOrError"]
        assert found["__typename"] == "ResourceDetails", found
        return found

    plain, logs = details("lambda_pipes"), details("lambda_pipes_logs")
    fields = {f["name"]: f["description"] for f in plain["configFields"]}
    assert {"region_name", "endpoint_url", "profile_name", "read_timeout_s", "connect_timeout_s", "channel",
            "messages_bucket", "context_bucket"} <= set(fields)  # fmt: skip
    assert "CloudWatch Logs" in fields["channel"]
    configured = {v["key"]: v["value"] for v in logs["configuredValues"]}
    assert configured["channel"].strip('"') == "logs", configured


def test_run_launched_through_the_ui_shows_metadata_check_and_request_id(
    dagster_ui: DagsterUI, local_aws: LocalAWS
) -> None:
    from dagster import DagsterRunStatus
    from dagster_graphql import DagsterGraphQLClient

    selector = {"repositoryLocationName": dagster_ui.location, "repositoryName": dagster_ui.repository}
    nodes = dagster_ui.query(ASSET_JOBS_QUERY, {"selector": selector})["repositoryOrError"]["assetNodes"]
    # the job the UI's "Materialize" button launches for the asset
    job = next(n["jobNames"][0] for n in nodes if n["assetKey"]["path"] == [ASSET])

    client = DagsterGraphQLClient("127.0.0.1", port_number=dagster_ui.port, timeout=30)
    run_id = client.submit_job_execution(
        job, repository_location_name=dagster_ui.location, repository_name=dagster_ui.repository,
        asset_selection=[ASSET], tags={"dagster/partition": PARTITION},
    )
    terminal = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + RUN_TIMEOUT_S
    status = client.get_run_status(run_id)
    while status not in terminal and time.monotonic() < deadline:
        time.sleep(0.5)
        status = client.get_run_status(run_id)

    run, events = _run_page(dagster_ui, run_id)
    assert run["status"] == "SUCCESS", (
        f"run {run_id} is {run['status']} after {RUN_TIMEOUT_S:.0f} s:\n{_errors(events)}\n"
        f"--- dagster dev output ---\n{dagster_ui.output()}"
    )
    assert {"key": "dagster/partition", "value": PARTITION} in run["tags"]

    materializations = [e for e in events if e["__typename"] == "MaterializationEvent"]
    assert [(m["assetKey"]["path"], m["partition"]) for m in materializations] == [([ASSET], PARTITION)]
    entries = {entry["label"]: entry for entry in materializations[0]["metadataEntries"]}
    assert entries["rows"]["intValue"] == 2000
    assert entries["day"]["text"] == PARTITION
    assert entries["mean_amount"]["floatValue"] > 0
    assert sum(json.loads(entries["orders_by_region"]["jsonString"]).values()) == 2000
    assert entries["lambda_function"]["text"] == FUNCTION
    request_id = entries["lambda_request_id"]["text"]
    assert str(uuid.UUID(request_id)) == request_id

    checks = [e["evaluation"] for e in events if e["__typename"] == "AssetCheckEvaluationEvent"]
    assert [(c["assetKey"]["path"], c["checkName"], c["success"]) for c in checks] == [([ASSET], CHECK, True)]

    # the request id the run page shows is the invocation the local AWS ran: its platform report (the
    # stack's functions log in JSON) names it, with the invocation's outcome
    logs = local_aws.client("logs", retries=0)
    found = logs.filter_log_events(logGroupName=f"/aws/lambda/{FUNCTION}", filterPattern=f'"{request_id}"')
    reports = [record["record"] for record in map(_json_or_none, (e["message"] for e in found["events"]))
               if record and record.get("type") == "platform.report"]
    assert [(r["requestId"], r["status"]) for r in reports] == [(request_id, "success")], found["events"]
