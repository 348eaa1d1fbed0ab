"""The local AWS as a Lambda-shaped box: the runtime's Python, isolation, log formats, init, freezing,
memory, and the API details Lambda and CloudWatch enforce."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import time
import uuid

import pytest
from botocore.config import Config

from pipeskit.local.runtime import sandbox
from pipeskit.local.runtime.image import RUNTIME_PACKAGES, find_python
from tests.local_aws.conftest import log_messages, payload_of, unique, wait_until

needs_python312 = pytest.mark.skipif(
    find_python("3.12") is None, reason="no python3.12 on this host: functions run on the host's Python"
)
needs_bubblewrap = pytest.mark.skipif(
    sandbox.bubblewrap() is None, reason="bubblewrap (or user namespaces) unavailable: no isolation on this host"
)
needs_memory_cgroup = pytest.mark.skipif(
    "memory" not in sandbox.cgroup_parents(), reason="no writable memory cgroup: memory is not enforced on this host"
)

JSON_LOGS = {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO"}


@needs_python312
def test_python312_functions_run_on_python312(lam, deploy):
    name = deploy(
        "import sys\n"
        "type Rows = list[int]\n"  # syntax new in 3.12
        "def handler(event, context):\n"
        "    try:\n        import imp\n        imp_ok = True\n"
        "    except ImportError:\n        imp_ok = False\n"
        "    return {'version': list(sys.version_info[:2]), 'imp': imp_ok}\n"
    )
    assert payload_of(lam.invoke(FunctionName=name)) == {"version": [3, 12], "imp": False}


def test_only_the_runtime_code_and_layers_are_importable(lam, deploy):
    name = deploy(
        "import importlib.util, boto3\n"
        "def handler(event, context):\n"
        "    found = {m: importlib.util.find_spec(m) is not None for m in ['dagster', 'moto', 'pytest', 'pipeskit']}\n"
        "    return {'found': found, 'boto3': boto3.__version__}\n"
    )
    result = payload_of(lam.invoke(FunctionName=name))
    assert result["found"] == {"dagster": False, "moto": False, "pytest": False, "pipeskit": False}
    assert f"boto3=={result['boto3']}" in RUNTIME_PACKAGES


@needs_bubblewrap
def test_a_function_sees_none_of_the_host(lam, deploy):
    name = deploy(
        "import os\n"
        "def handler(event, context):\n"
        "    pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "    try:\n        open('/var/task/written', 'w')\n        task_writable = True\n"
        "    except OSError:\n        task_writable = False\n"
        "    return {'cwd': os.getcwd(), 'host_paths': [p for p in event['paths'] if os.path.exists(p)],\n"
        "            'pids': len(pids), 'task_writable': task_writable, 'env': sorted(os.environ)}\n"
    )
    paths = [str(__import__("pathlib").Path(__file__).resolve().parents[2]), "/root/.cache", "/work", "/home"]
    result = payload_of(lam.invoke(FunctionName=name, Payload=json.dumps({"paths": paths})))
    assert result["cwd"] == "/var/task"
    assert result["host_paths"] == []
    assert result["pids"] <= 3, "its own PID namespace: bubblewrap and the runtime"
    assert result["task_writable"] is False
    # Lambda's variables; LC_CTYPE is Python's own locale coercion (PEP 538), PWD bubblewrap's
    allowed = ("AWS_", "LAMBDA_", "_HANDLER", "_X_AMZN", "LANG", "TZ", "PATH", "LD_LIBRARY_PATH", "LC_CTYPE", "PWD")
    assert [k for k in result["env"] if not k.startswith(allowed)] == []


@needs_bubblewrap
def test_tmp_is_private_to_each_function(lam, deploy):
    writer = deploy(
        "def handler(event, context):\n    open('/tmp/forged.jsonl', 'w').write('forged')\n    return 'written'\n"
    )
    reader = deploy("import os\ndef handler(event, context):\n    return os.path.exists('/tmp/forged.jsonl')\n")
    assert payload_of(lam.invoke(FunctionName=writer)) == "written"
    assert payload_of(lam.invoke(FunctionName=reader)) is False


def test_json_log_format_gives_platform_records_and_runtime_json(lam, deploy, logs):
    name = deploy(
        "import logging\nlogger = logging.getLogger()\n"
        "def handler(event, context):\n    logger.info('hello as json')\n    print('plain print')\n    return 1\n",
        LoggingConfig=JSON_LOGS,
    )
    first = lam.invoke(FunctionName=name)["ResponseMetadata"]["RequestId"]
    second = lam.invoke(FunctionName=name)["ResponseMetadata"]["RequestId"]
    messages = log_messages(logs, f"/aws/lambda/{name}")
    records = [json.loads(m) for m in messages if m.startswith("{")]
    types = [r.get("type") for r in records if "type" in r]
    assert types == ["platform.initStart", "platform.start", "platform.report", "platform.start", "platform.report"]
    reports = [r["record"] for r in records if r.get("type") == "platform.report"]
    assert reports[0]["requestId"] == first and "initDurationMs" in reports[0]["metrics"]
    assert reports[1]["requestId"] == second and "initDurationMs" not in reports[1]["metrics"]
    assert reports[0]["metrics"]["memorySizeMB"] == 128 and reports[0]["status"] == "success"
    app = [r for r in records if r.get("message") == "hello as json"]
    assert app and app[0]["level"] == "INFO" and app[0]["requestId"] == first
    assert "plain print" in messages, "print output stays plain text"


def test_text_log_format_has_init_start_and_init_duration(lam, deploy, logs):
    name = deploy("def handler(event, context):\n    return 1\n")
    lam.invoke(FunctionName=name)
    lam.invoke(FunctionName=name)
    messages = log_messages(logs, f"/aws/lambda/{name}")
    assert messages[0].startswith("INIT_START Runtime Version: python3.12")
    reports = [m for m in messages if m.startswith("REPORT")]
    assert "Init Duration:" in reports[0] and "Init Duration:" not in reports[1]


def test_application_log_level_filters_the_runtime_logger(lam, deploy, logs):
    name = deploy(
        "import logging\n"
        "def handler(event, context):\n    logging.getLogger().debug('too fine')\n"
        "    logging.getLogger().warning('kept')\n    return 1\n",
        LoggingConfig={**JSON_LOGS, "ApplicationLogLevel": "WARN"},
    )
    lam.invoke(FunctionName=name)
    text = "\n".join(log_messages(logs, f"/aws/lambda/{name}"))
    assert "kept" in text and "too fine" not in text


def test_a_transient_init_failure_is_not_kept(lam, deploy, local_aws):
    bucket = unique("init-switch")
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="state", Body=b"fail")
    name = deploy(
        "import boto3, os\n"
        f"if boto3.client('s3').get_object(Bucket='{bucket}', Key='state')['Body'].read() == b'fail':\n"
        "    raise RuntimeError('dependency not ready')\n"
        "def handler(event, context):\n    return 'initialised'\n",
        timeout=10,
    )
    failed = lam.invoke(FunctionName=name)
    assert failed["FunctionError"] == "Unhandled"
    assert "dependency not ready" in payload_of(failed)["errorMessage"]
    s3.put_object(Bucket=bucket, Key="state", Body=b"ok")
    assert payload_of(lam.invoke(FunctionName=name)) == "initialised"


def test_an_init_beyond_the_limit_is_retried_within_the_invocation(lam, deploy, logs, local_aws):
    name = deploy("import time\ntime.sleep(1.5)\ndef handler(event, context):\n    return 'slow init'\n", timeout=10)
    with local_aws.override(init_timeout_s=1.0):
        response = lam.invoke(FunctionName=name)
    assert "FunctionError" not in response, response["Payload"].read()
    assert payload_of(response) == "slow init"
    messages = log_messages(logs, f"/aws/lambda/{name}")
    assert any(m.startswith("INIT_REPORT") and "Phase: init\tStatus: timeout" in m for m in messages)


def test_an_init_error_names_its_phase(lam, deploy, logs):
    name = deploy("import not_installed\ndef handler(event, context):\n    return 1\n")
    body = payload_of(lam.invoke(FunctionName=name))
    assert body["errorType"] == "Runtime.ImportModuleError"
    messages = log_messages(logs, f"/aws/lambda/{name}")
    phases = [m for m in messages if m.startswith("INIT_REPORT")]
    assert [("Phase: init" in m, "Phase: invoke" in m) for m in phases] == [(True, False), (False, True)]
    assert all("Error Type: Runtime.ImportModuleError" in m for m in phases)


def test_forty_concurrent_cold_starts_importing_boto3_all_succeed(lam, deploy, local_aws):
    name = deploy(
        "import boto3, time, uuid\nENVIRONMENT = uuid.uuid4().hex\n"
        "def handler(event, context):\n    time.sleep(0.5)\n    return ENVIRONMENT\n",
        timeout=60,
    )
    clients = [local_aws.client("lambda", retries=0, read_timeout=120) for _ in range(40)]
    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        responses = list(pool.map(lambda c: c.invoke(FunctionName=name), clients))
    failures = [r["Payload"].read() for r in responses if "FunctionError" in r]
    assert failures == []
    assert len({payload_of(r) for r in responses}) >= 2


def test_an_environment_is_frozen_between_invocations(lam, deploy):
    """A background thread started in one invocation runs on only when the next one thaws it."""
    name = deploy(
        "import threading, time\nRAN = []\n"
        "def late():\n    time.sleep(0.3)\n    RAN.append(time.time())\n"
        "def handler(event, context):\n"
        "    if event.get('start'):\n        threading.Thread(target=late, daemon=True).start()\n"
        "    return RAN\n"
    )
    assert payload_of(lam.invoke(FunctionName=name, Payload=b'{"start": true}')) == []
    time.sleep(1.0)  # long enough for the thread, were the environment not frozen
    before = time.time()
    ran = payload_of(lam.invoke(FunctionName=name))
    assert ran == [] or ran[0] >= before - 0.05, "the thread ran while the environment was idle"


@needs_memory_cgroup
def test_memory_above_the_memory_size_ends_the_invocation_as_lambda_reports_it(lam, deploy, logs):
    name = deploy(
        "def handler(event, context):\n    blocks = [bytearray(32 * 1024 * 1024) for _ in range(16)]\n"
        "    return len(blocks)\n",
        MemorySize=128,
        timeout=30,
    )
    response = lam.invoke(FunctionName=name)
    body = payload_of(response)
    request_id = response["ResponseMetadata"]["RequestId"]
    assert body["errorType"] == "Runtime.OutOfMemory"
    assert body["errorMessage"] == f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"
    report = next(m for m in log_messages(logs, f"/aws/lambda/{name}") if m.startswith("REPORT"))
    assert "Max Memory Used: 128 MB" in report and "Error Type: Runtime.OutOfMemory" in report


def test_client_context_reaches_the_handler_decoded(lam, deploy):
    name = deploy("def handler(event, context):\n    return context.client_context.custom\n")
    context = base64.b64encode(json.dumps({"custom": {"tenant": "acme"}}).encode()).decode()
    assert payload_of(lam.invoke(FunctionName=name, ClientContext=context)) == {"tenant": "acme"}


def test_the_runtime_marshals_decimals_and_bytes(lam, deploy):
    name = deploy("import decimal\ndef handler(event, context):\n    return {'amount': decimal.Decimal('1.50')}\n")
    assert payload_of(lam.invoke(FunctionName=name)) == {"amount": 1.5}
    raw = deploy("def handler(event, context):\n    return b'raw bytes'\n")
    assert lam.invoke(FunctionName=raw)["Payload"].read() == b"raw bytes"


def test_get_log_events_pages_stop_at_one_megabyte(logs, local_aws):
    group, stream = f"/test/{uuid.uuid4().hex}", "s"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    line = "x" * 10_000
    now = int(time.time() * 1000)
    for batch in range(3):
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": now + batch, "message": line} for _ in range(100)])
    token, seen, sizes = None, 0, []
    while True:
        kwargs = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        page = logs.get_log_events(**kwargs, **({"nextToken": token} if token else {}))
        if not page["events"]:
            break
        sizes.append(sum(len(e["message"]) + 26 for e in page["events"]))
        seen += len(page["events"])
        token = page["nextForwardToken"]
    assert seen == 300
    assert max(sizes) <= 1024 * 1024 and len(sizes) >= 3


def test_an_event_source_mapping_needs_visibility_above_the_function_timeout(lam, deploy, sqs):
    name = deploy("def handler(event, context):\n    return 1\n", timeout=60)
    queue = sqs.create_queue(QueueName=unique("short-visibility"), Attributes={"VisibilityTimeout": "30"})
    arn = sqs.get_queue_attributes(QueueUrl=queue["QueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    refusal = "30 seconds is less than Function timeout: 60"
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match=refusal):
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name)


def test_an_event_older_than_its_maximum_age_goes_to_the_failure_destination(lam, deploy, sqs, local_aws):
    queue_url = sqs.create_queue(QueueName=unique("too-old"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    name = deploy("def handler(event, context):\n    raise ValueError('always')\n")
    # AWS's minimum age is 60 s, checked by botocore; the local AWS takes 1 s to keep the test short
    unchecked = local_aws.client("lambda", retries=0, config=Config(parameter_validation=False))
    unchecked.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=1,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )  # fmt: skip
    with local_aws.override(async_retry_delays_s=(1.5, 1.5)):
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
        messages = wait_until(lambda: sqs.receive_message(QueueUrl=queue_url).get("Messages"), timeout=15)
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 1


def test_a_weighted_alias_routes_between_versions(lam, deploy):
    name = deploy("def handler(event, context):\n    return 'v1'\n")
    v1 = lam.publish_version(FunctionName=name)["Version"]
    lam.update_function_code(FunctionName=name, ZipFile=__import__("pipeskit.local.testing", fromlist=["x"]).zip_files(
        {"app.py": "def handler(event, context):\n    return 'v2'\n"}))
    wait_until(lambda: lam.get_function(FunctionName=name)["Configuration"]["LastUpdateStatus"] == "Successful")
    v2 = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=v1,
                     RoutingConfig={"AdditionalVersionWeights": {v2: 0.5}})
    executed = {lam.invoke(FunctionName=name, Qualifier="live")["ExecutedVersion"] for _ in range(30)}
    assert executed == {v1, v2}
