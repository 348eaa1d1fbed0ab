"""Event invocations: 202, background run, retries, destinations and DLQ."""

from __future__ import annotations

import json
import time

import pytest

from pipeskit.local import LocalAWS
from tests.local_aws.conftest import log_messages, unique, wait_until

FAILING = "def handler(event, context):\n    print('attempt')\n    raise RuntimeError('always fails')\n"


def _queue(sqs, prefix="q"):
    url = sqs.create_queue(QueueName=unique(prefix))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _receive(sqs, url, timeout=10.0):
    def poll():
        return sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages")

    return wait_until(poll, timeout=timeout)


def _attempts(logs, name):
    return sum(1 for m in log_messages(logs, f"/aws/lambda/{name}") if m.startswith("START RequestId"))


def test_event_returns_202_at_once_and_runs_in_background(lam, deploy, sqs):
    url, arn = _queue(sqs)
    name = deploy(
        "import time, boto3\n"
        "def handler(event, context):\n"
        "    time.sleep(0.5)\n"
        "    boto3.client('sqs').send_message(QueueUrl=event['url'], MessageBody='done')\n"
    )
    started = time.monotonic()
    response = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"url": url}))
    assert response["StatusCode"] == 202
    assert time.monotonic() - started < 0.4
    assert _receive(sqs, url)[0]["Body"] == "done"


def test_failures_are_retried_then_sent_to_on_failure_destination(lam, deploy, sqs, logs):
    url, arn = _queue(sqs, "dest")
    name = deploy(FAILING)
    lam.put_function_event_invoke_config(
        FunctionName=name,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )
    response = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"k": "v"}')
    record = json.loads(_receive(sqs, url)[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["requestId"] == response["ResponseMetadata"]["RequestId"]
    assert record["requestContext"]["functionArn"].endswith(f"function:{name}:$LATEST")
    assert record["requestPayload"] == {"k": "v"}
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorMessage"] == "always fails"
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert _attempts(logs, name) == 2


def test_default_two_retries_then_dead_letter_queue(lam, deploy, sqs, logs):
    url, arn = _queue(sqs, "dlq")
    name = deploy(FAILING, DeadLetterConfig={"TargetArn": arn})
    assert lam.get_function_configuration(FunctionName=name)["DeadLetterConfig"] == {"TargetArn": arn}
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"original": true}')
    message = _receive(sqs, url)[0]
    assert json.loads(message["Body"]) == {"original": True}
    assert message["MessageAttributes"]["ErrorMessage"]["StringValue"] == "always fails"
    assert "RequestID" in message["MessageAttributes"]
    assert _attempts(logs, name) == 3


def test_zero_retries(lam, deploy, sqs, logs):
    url, arn = _queue(sqs, "dest0")
    name = deploy(FAILING)
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0, DestinationConfig={"OnFailure": {"Destination": arn}}
    )
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    record = json.loads(_receive(sqs, url)[0]["Body"])
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert _attempts(logs, name) == 1


@pytest.mark.parametrize("another_started_and_stopped", [False, True])
def test_sns_subscription_delivers_through_the_local_runtime(local_aws, lam, deploy, sqs, another_started_and_stopped):
    """Also when another local AWS of the process started and stopped meanwhile: moto's state is per process,
    and stopping that one must not drop the deliveries of the one still running."""
    if another_started_and_stopped:
        with LocalAWS(port=0, quiet=True, iam=False):
            pass
    url, _ = _queue(sqs, "sns-out")
    name = deploy(
        "import boto3\n"
        "def handler(event, context):\n"
        "    message = event['Records'][0]['Sns']['Message']\n"
        "    boto3.client('sqs').send_message(QueueUrl=message, MessageBody='from sns')\n"
    )
    function_arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    sns = local_aws.client("sns")
    topic = sns.create_topic(Name=unique("topic"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=function_arn)
    sns.publish(TopicArn=topic, Message=url)
    assert _receive(sqs, url)[0]["Body"] == "from sns"


def test_update_event_invoke_config_changes_only_the_fields_given(lam, deploy, sqs, logs):
    url, arn = _queue(sqs, "dest-upd")
    name = deploy(FAILING)
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=1, MaximumEventAgeInSeconds=600,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )  # fmt: skip
    lam.update_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    config = lam.get_function_event_invoke_config(FunctionName=name)
    assert (config["MaximumRetryAttempts"], config["MaximumEventAgeInSeconds"]) == (0, 600)
    assert config["DestinationConfig"]["OnFailure"] == {"Destination": arn}
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    record = json.loads(_receive(sqs, url)[0]["Body"])
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert _attempts(logs, name) == 1
