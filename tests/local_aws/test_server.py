"""The endpoint itself: URL, environment to export, start/stop, CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from pipeskit.local import LocalAWS


def test_endpoint_is_spelled_localhost_and_env_is_complete(local_aws):
    assert local_aws.endpoint_url == f"http://localhost:{local_aws.port}"
    assert local_aws.port > 0
    env = local_aws.env()
    assert env["AWS_ENDPOINT_URL"] == local_aws.endpoint_url
    assert env["AWS_DEFAULT_REGION"] == env["AWS_REGION"] == "us-east-1"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    assert "AWS_ENDPOINT_URL" not in os.environ  # the fixture sets nothing globally


def test_one_endpoint_serves_the_moto_services(local_aws):
    assert local_aws.client("sts").get_caller_identity()["Account"] == "123456789012"
    local_aws.client("ssm").put_parameter(Name="/local/p", Value="v", Type="String", Overwrite=True)
    assert local_aws.client("ssm").get_parameter(Name="/local/p")["Parameter"]["Value"] == "v"
    assert "Buckets" in local_aws.client("s3").list_buckets()
    assert "StackSummaries" in local_aws.client("cloudformation").list_stacks()
    sqs = local_aws.client("sqs")
    url = sqs.create_queue(QueueName="local-server-check")["QueueUrl"]
    assert url in sqs.list_queues(QueueNamePrefix="local-server-check")["QueueUrls"]
    assert "logGroups" in local_aws.client("logs").describe_log_groups()
    assert "Roles" in local_aws.client("iam").list_roles()
    assert "Functions" in local_aws.client("lambda").list_functions()


def test_start_stop_context_manager_frees_the_port():
    with LocalAWS(port=0) as server:
        port = server.port
        assert server.client("sts").get_caller_identity()["Account"]
    assert not server.running
    # the port can be bound again once stopped
    again = LocalAWS(port=port).start()
    try:
        assert again.port == port
    finally:
        again.stop()


def test_cli_prints_exports_and_stops_on_sigint():
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeskit", "local", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [process.stdout.readline().strip() for _ in range(6)]
        assert lines[-1] == "unset AWS_SESSION_TOKEN", "IAM on by default: the administrator's long-term keys"
        exports = dict(line.removeprefix("export ").split("=", 1) for line in lines[:-1])
        assert exports["AWS_ENDPOINT_URL"].startswith("http://localhost:")
        assert exports["AWS_REGION"] == "us-east-1"
        assert exports["AWS_ACCESS_KEY_ID"] != "testing"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: it has exited)."""
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _in_group(pgid: int) -> list[int]:
    """The running processes of process group ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry))
    return found


def test_stopping_with_sessions_in_flight_leaves_no_process_and_no_error(caplog, tmp_path):
    """Synchronous and asynchronous invocations are running, more are arriving: stopping the local AWS
    stops every sandbox process it started, and the server logs no error while it stops."""
    import json
    import logging
    import threading
    import time

    from pipeskit.local.testing import zip_files

    with LocalAWS(port=0, quiet=True) as server:
        iam, lam = server.client("iam"), server.client("lambda", retries=0, read_timeout=60)
        role = iam.create_role(RoleName="stop-role", AssumeRolePolicyDocument=json.dumps({"Statement": []}))["Role"]
        lam.create_function(
            FunctionName="sleeper", Runtime="python3.12", Role=role["Arn"], Handler="app.handler", Timeout=60,
            Code={"ZipFile": zip_files({"app.py": "import time\ndef handler(event, context):\n    time.sleep(30)\n"})},
        )  # fmt: skip

        def invoke(kind: str) -> None:
            try:
                lam.invoke(FunctionName="sleeper", InvocationType=kind, Payload=b"{}")
            except Exception:  # the local AWS stopped under it: the caller's problem, not the server's
                pass

        threads = [threading.Thread(target=invoke, args=(kind,), daemon=True)
                   for kind in ("RequestResponse", "RequestResponse", "Event", "Event")]  # fmt: skip
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(server.runtime.pool._live) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = [env._proc.pid for env in list(server.runtime.pool._live)]
        assert len(pids) == 4, "four environments running"
        late = [threading.Thread(target=invoke, args=("RequestResponse",), daemon=True) for _ in range(3)]
        for thread in late:  # arriving while the local AWS stops
            thread.start()
        with caplog.at_level(logging.ERROR):
            server.stop()
    assert [pid for pid in pids if _alive(pid) or _in_group(pid)] == [], "every sandbox process is gone"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
