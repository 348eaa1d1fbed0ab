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
        exports = dict(line.removeprefix("export ").split("=", 1) for line in lines)
        assert exports["AWS_ENDPOINT_URL"].startswith("http://localhost:")
        assert exports["AWS_REGION"] == "us-east-1"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
