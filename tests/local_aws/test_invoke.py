"""Invoke semantics of the local Lambda runtime, through the HTTP endpoint with boto3."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import re
import time

import pytest

from tests.local_aws.conftest import assert_report_line, log_messages, make_zip, payload_of, unique, wait_until

COUNTER = """
import uuid
ENVIRONMENT = uuid.uuid4().hex
COUNT = 0
def handler(event, context):
    global COUNT
    COUNT += 1
    return {"count": COUNT, "environment": ENVIRONMENT}
"""


def test_code_and_layers_come_from_the_deployment(lam, deploy):
    layer_zip = make_zip({"python/layer_only_mod.py": "VALUE = 'from-layer'\n"})
    layer_arn = lam.publish_layer_version(
        LayerName=unique("layer"), Content={"ZipFile": layer_zip}, CompatibleRuntimes=["python3.11"]
    )["LayerVersionArn"]
    name = deploy(
        files={
            "app.py": "import sys, helper, layer_only_mod\n"
            "def handler(event, context):\n"
            "    return {'helper': helper.X, 'layer': layer_only_mod.VALUE,\n"
            "            'path0': sys.path[0], 'layer_file': layer_only_mod.__file__}\n",
            "helper.py": "X = 42\n",
        },
        Layers=[layer_arn],
    )
    result = payload_of(lam.invoke(FunctionName=name))
    assert result["helper"] == 42
    assert result["layer"] == "from-layer"
    assert result["layer_file"].endswith("python/layer_only_mod.py")
    assert result["path0"].startswith("/") and "task" in result["path0"]


def test_environment_variables_and_context(lam, deploy, local_aws):
    name = deploy(
        "import os\n"
        "KEYS = ['AWS_LAMBDA_FUNCTION_NAME', 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE',\n"
        "        'AWS_LAMBDA_FUNCTION_VERSION', 'AWS_LAMBDA_LOG_GROUP_NAME', 'AWS_LAMBDA_LOG_STREAM_NAME',\n"
        "        'AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY',\n"
        "        'AWS_ENDPOINT_URL', 'MY_SETTING']\n"
        "def handler(event, context):\n"
        "    return {'env': {k: os.environ.get(k) for k in KEYS},\n"
        "            'ctx': {'aws_request_id': context.aws_request_id,\n"
        "                    'function_name': context.function_name,\n"
        "                    'function_version': context.function_version,\n"
        "                    'invoked_function_arn': context.invoked_function_arn,\n"
        "                    'memory_limit_in_mb': context.memory_limit_in_mb,\n"
        "                    'log_group_name': context.log_group_name,\n"
        "                    'log_stream_name': context.log_stream_name,\n"
        "                    'remaining': context.get_remaining_time_in_millis()}}\n",
        MemorySize=256,
        Environment={"Variables": {"MY_SETTING": "value"}},
    )
    response = lam.invoke(FunctionName=name)
    result = payload_of(response)
    env, ctx = result["env"], result["ctx"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    assert env["AWS_ENDPOINT_URL"] == local_aws.endpoint_url
    assert env["MY_SETTING"] == "value"
    assert ctx["aws_request_id"] == response["ResponseMetadata"]["RequestId"]
    assert ctx["function_name"] == name
    assert ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    assert ctx["memory_limit_in_mb"] == "256"
    assert ctx["log_group_name"] == f"/aws/lambda/{name}"
    assert ctx["log_stream_name"] == env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert 0 < ctx["remaining"] <= 3000


def test_function_can_call_the_local_aws(lam, deploy, local_aws):
    bucket = unique("bucket")
    local_aws.client("s3").create_bucket(Bucket=bucket)
    name = deploy(
        "import boto3\n"
        "def handler(event, context):\n"
        "    boto3.client('s3').put_object(Bucket=event['bucket'], Key='k', Body=b'written')\n"
        "    return 'ok'\n"
    )
    assert payload_of(lam.invoke(FunctionName=name, Payload=json.dumps({"bucket": bucket}))) == "ok"
    assert local_aws.client("s3").get_object(Bucket=bucket, Key="k")["Body"].read() == b"written"


def test_powertools_logger_inject_lambda_context(lam, deploy, logs, powertools_layer):
    name = deploy(
        "from aws_lambda_powertools import Logger\n"
        "logger = Logger(service='svc')\n"
        "@logger.inject_lambda_context\n"
        "def handler(event, context):\n"
        "    logger.info('hello from powertools')\n"
        "    return 'ok'\n",
        Layers=[powertools_layer],
    )
    response = lam.invoke(FunctionName=name)
    assert "FunctionError" not in response, response["Payload"].read()
    assert payload_of(response) == "ok"
    lines = [m for m in log_messages(logs, f"/aws/lambda/{name}") if "hello from powertools" in m]
    record = json.loads(lines[0])
    assert record["function_name"] == name
    assert record["function_request_id"] == response["ResponseMetadata"]["RequestId"]
    assert record["cold_start"] is True


def test_request_response_returns_handler_result_and_headers(lam, deploy):
    name = deploy("def handler(event, context):\n    return {'echo': event}\n")
    response = lam.invoke(FunctionName=name, Payload=json.dumps({"a": [1, 2]}))
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    assert payload_of(response) == {"echo": {"a": [1, 2]}}


def test_published_version_reports_executed_version(lam, deploy):
    name = deploy("def handler(event, context):\n    return context.function_version\n")
    version = lam.publish_version(FunctionName=name)["Version"]
    response = lam.invoke(FunctionName=name, Qualifier=version)
    assert response["ExecutedVersion"] == version
    assert payload_of(response) == version


def test_unhandled_exception(lam, deploy, logs):
    name = deploy(
        "def inner():\n    raise ValueError('boom')\n"
        "def handler(event, context):\n    inner()\n"
    )
    response = lam.invoke(FunctionName=name, LogType="Tail")
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    body = payload_of(response)
    assert body["errorMessage"] == "boom"
    assert body["errorType"] == "ValueError"
    assert isinstance(body["stackTrace"], list) and all(isinstance(s, str) for s in body["stackTrace"])
    assert any("in inner" in frame for frame in body["stackTrace"])
    tail = base64.b64decode(response["LogResult"]).decode()
    assert "[ERROR] ValueError: boom" in tail and "Traceback (most recent call last):" in tail
    messages = log_messages(logs, f"/aws/lambda/{name}")
    error_events = [m for m in messages if m.startswith("[ERROR] ValueError: boom")]
    assert error_events and "Traceback" in error_events[0]


def test_log_tail_is_last_4kb_with_start_end_report(lam, deploy):
    name = deploy("def handler(event, context):\n    print('first line')\n    return 1\n")
    response = lam.invoke(FunctionName=name, LogType="Tail")
    tail = base64.b64decode(response["LogResult"]).decode()
    request_id = response["ResponseMetadata"]["RequestId"]
    lines = tail.splitlines()
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert lines[1] == "first line"
    assert lines[2] == f"END RequestId: {request_id}"
    assert_report_line(lines[3], request_id)
    name = deploy("def handler(event, context):\n    for i in range(500):\n        print('line', i)\n")
    response = lam.invoke(FunctionName=name, LogType="Tail")
    raw = base64.b64decode(response["LogResult"])
    assert len(raw) == 4096
    assert raw.decode().rstrip("\n").splitlines()[-1].startswith("REPORT RequestId:")
    assert "line 499" in raw.decode() and "line 0\n" not in raw.decode()
    assert "LogResult" not in lam.invoke(FunctionName=name)


def test_dry_run_and_missing_function(lam, deploy):
    name = deploy("def handler(event, context):\n    raise SystemExit('must not run')\n")
    assert lam.invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName=unique("missing"))


def test_timeout_kills_the_environment(lam, deploy, logs):
    name = deploy(
        "import time\nCOUNT = 0\n"
        "def handler(event, context):\n"
        "    global COUNT\n    COUNT += 1\n"
        "    if event.get('sleep'):\n        time.sleep(30)\n"
        "    return COUNT\n",
        timeout=1,
    )
    assert payload_of(lam.invoke(FunctionName=name)) == 1
    started = time.monotonic()
    response = lam.invoke(FunctionName=name, Payload=b'{"sleep": true}')
    assert time.monotonic() - started < 5
    assert response["FunctionError"] == "Unhandled"
    body = payload_of(response)
    request_id = response["ResponseMetadata"]["RequestId"]
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\dT[\d:.]+Z {request_id} Task timed out after 1\.00 seconds", body["errorMessage"]
    )
    assert body["errorType"] == "Sandbox.Timedout"
    # the broken environment was discarded: module state starts over
    assert payload_of(lam.invoke(FunctionName=name)) == 1
    messages = log_messages(logs, f"/aws/lambda/{name}")
    assert any("Task timed out after 1.00 seconds" in m for m in messages)


def test_process_exit_is_runtime_exit_error(lam, deploy):
    name = deploy(
        "import os\nCOUNT = 0\n"
        "def handler(event, context):\n"
        "    global COUNT\n    COUNT += 1\n"
        "    if event.get('crash'):\n        print('about to crash')\n        os._exit(3)\n"
        "    return COUNT\n"
    )
    assert payload_of(lam.invoke(FunctionName=name)) == 1
    response = lam.invoke(FunctionName=name, Payload=b'{"crash": true}', LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    body = payload_of(response)
    request_id = response["ResponseMetadata"]["RequestId"]
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"] == f"RequestId: {request_id} Error: Runtime exited with error: exit status 3"
    tail = base64.b64decode(response["LogResult"]).decode()
    assert "about to crash" in tail and "END RequestId" in tail
    assert payload_of(lam.invoke(FunctionName=name)) == 1


def test_warm_environment_is_reused(lam, deploy):
    name = deploy(COUNTER)
    results = [payload_of(lam.invoke(FunctionName=name)) for _ in range(3)]
    assert [r["count"] for r in results] == [1, 2, 3]
    assert len({r["environment"] for r in results}) == 1


def test_concurrent_invocations_get_separate_environments(lam, deploy, local_aws):
    name = deploy(
        "import time, uuid\nENVIRONMENT = uuid.uuid4().hex\n"
        "def handler(event, context):\n    time.sleep(0.5)\n    return ENVIRONMENT\n"
    )
    clients = [local_aws.client("lambda", retries=0) for _ in range(3)]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        environments = list(pool.map(lambda c: payload_of(c.invoke(FunctionName=name)), clients))
    assert len(set(environments)) == 3


def test_environments_are_invalidated_on_code_and_config_change(lam, deploy):
    name = deploy(COUNTER)
    assert payload_of(lam.invoke(FunctionName=name))["count"] == 1
    assert payload_of(lam.invoke(FunctionName=name))["count"] == 2
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"X": "1"}})
    assert payload_of(lam.invoke(FunctionName=name))["count"] == 1
    lam.update_function_code(
        FunctionName=name, ZipFile=make_zip({"app.py": "def handler(event, context):\n    return 'v2'\n"})
    )
    assert payload_of(lam.invoke(FunctionName=name)) == "v2"


def test_reserved_concurrency_is_enforced(lam, deploy, local_aws):
    name = deploy(
        "import time\ndef handler(event, context):\n    time.sleep(event.get('s', 0))\n    return 'ok'\n"
    )
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(lam.exceptions.TooManyRequestsException) as raised:
        lam.invoke(FunctionName=name)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    slow_client = local_aws.client("lambda", retries=0)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(slow_client.invoke, FunctionName=name, Payload=b'{"s": 1}')
        wait_until(lambda: local_aws.runtime.pool.busy_count(
            f"arn:aws:lambda:us-east-1:123456789012:function:{name}"))
        with pytest.raises(lam.exceptions.TooManyRequestsException):
            lam.invoke(FunctionName=name)
        assert payload_of(slow.result()) == "ok"
    lam.delete_function_concurrency(FunctionName=name)
    assert payload_of(lam.invoke(FunctionName=name)) == "ok"


def test_import_error_is_reported_per_invocation(lam, deploy):
    name = deploy("import does_not_exist_anywhere\ndef handler(event, context):\n    return 1\n")
    response = lam.invoke(FunctionName=name)
    assert response["FunctionError"] == "Unhandled"
    body = payload_of(response)
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'app'" in body["errorMessage"]
