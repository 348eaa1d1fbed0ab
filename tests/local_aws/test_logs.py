"""Function output lands in CloudWatch Logs like Lambda's."""

from __future__ import annotations

import re

from tests.local_aws.conftest import assert_report_line, unique


def test_invocation_logs_are_framed_and_ordered(lam, deploy, logs):
    name = deploy(
        "import sys, logging\n"
        "def handler(event, context):\n"
        "    print('to stdout', event['i'])\n"
        "    print('to stderr', event['i'], file=sys.stderr)\n"
        "    logging.getLogger().warning('via logging')\n"
        "    sys.stdout.write('no newline at end')\n"
        "    return 'ok'\n"
    )
    request_ids = []
    for i in range(2):
        response = lam.invoke(FunctionName=name, Payload=f'{{"i": {i}}}')
        request_ids.append(response["ResponseMetadata"]["RequestId"])
    group = f"/aws/lambda/{name}"
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert len(streams) == 1
    stream = streams[0]["logStreamName"]
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", stream)
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    messages = [e["message"] for e in events]
    timestamps = [e["timestamp"] for e in events]
    assert timestamps == sorted(timestamps)
    assert messages[0].startswith("INIT_START")
    for i, request_id in enumerate(request_ids):
        start = messages.index(f"START RequestId: {request_id} Version: $LATEST")
        block = messages[start : start + 7]
        assert block[1] == f"to stdout {i}"
        assert block[2] == f"to stderr {i}"
        assert re.fullmatch(rf"\[WARNING\]\t\S+Z\t{request_id}\tvia logging", block[3])
        assert block[4] == "no newline at end"
        assert block[5] == f"END RequestId: {request_id}"
        assert_report_line(block[6], request_id)
    filtered = logs.filter_log_events(logGroupName=group, filterPattern="stderr")["events"]
    assert [e["message"] for e in filtered] == ["to stderr 0", "to stderr 1"]


def test_each_environment_has_its_own_stream(lam, deploy, logs, local_aws):
    import concurrent.futures

    name = deploy("import time\ndef handler(event, context):\n    time.sleep(0.3)\n    print('x')\n")
    clients = [local_aws.client("lambda", retries=0) for _ in range(2)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda c: c.invoke(FunctionName=name), clients))
    streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
    assert len(streams) == 2


def test_logging_config_log_group_is_used(lam, deploy, logs):
    group = f"/custom/{unique('group')}"
    name = deploy(
        "import os\ndef handler(event, context):\n    print('custom')\n"
        "    return [os.environ['AWS_LAMBDA_LOG_GROUP_NAME'], context.log_group_name]\n",
        LoggingConfig={"LogFormat": "Text", "LogGroup": group},
    )
    assert lam.get_function_configuration(FunctionName=name)["LoggingConfig"]["LogGroup"] == group
    response = lam.invoke(FunctionName=name)
    import json

    assert json.loads(response["Payload"].read()) == [group, group]
    events = logs.filter_log_events(logGroupName=group)["events"]
    assert "custom" in [e["message"] for e in events]
