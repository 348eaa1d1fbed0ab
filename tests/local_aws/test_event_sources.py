"""SQS event source mappings are polled by the local runtime like Lambda does."""

from __future__ import annotations

import json
import time

from tests.local_aws.conftest import log_messages, unique, wait_until

# The handler appends each batch's records to the log as one JSON line.
RECORDER = (
    "import json\n"
    "def handler(event, context):\n"
    "    print('BATCH ' + json.dumps(event['Records']))\n"
    "    fail = [r['messageId'] for r in event['Records'] if r['body'].startswith('fail')]\n"
    "    if any(r['body'] == 'crash' for r in event['Records']):\n"
    "        raise RuntimeError('batch failed')\n"
    "    return {'batchItemFailures': [{'itemIdentifier': i} for i in fail]}\n"
)


def _queue(sqs, **attributes):
    attributes = {k: str(v) for k, v in attributes.items()}
    url = sqs.create_queue(QueueName=unique("esm"), Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _batches(logs, name):
    return [
        json.loads(m[len("BATCH "):])
        for m in log_messages(logs, f"/aws/lambda/{name}")
        if m.startswith("BATCH ")
    ]


def _count(sqs, url):
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_records_are_real_sqs_events_and_messages_are_deleted(lam, deploy, sqs, logs):
    url, arn = _queue(sqs, VisibilityTimeout=5)
    name = deploy(RECORDER)
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=10)
    sqs.send_message(
        QueueUrl=url,
        MessageBody="hello",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "greeting"}},
    )
    batch = wait_until(lambda: _batches(logs, name))[0]
    assert len(batch) == 1
    record = batch[0]
    assert record["body"] == "hello"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == arn
    assert record["awsRegion"] == "us-east-1"
    assert record["messageId"] and record["receiptHandle"] and record["md5OfBody"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(record["attributes"])
    assert record["messageAttributes"]["kind"]["stringValue"] == "greeting"
    assert record["messageAttributes"]["kind"]["dataType"] == "String"
    wait_until(lambda: _count(sqs, url) == 0)


def test_batch_size_and_batching_window(lam, deploy, sqs, logs):
    url, arn = _queue(sqs, VisibilityTimeout=5)
    name = deploy(RECORDER)
    lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, BatchSize=3, MaximumBatchingWindowInSeconds=1
    )
    for i in range(7):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    wait_until(lambda: sum(len(b) for b in _batches(logs, name)) == 7)
    sizes = [len(b) for b in _batches(logs, name)]
    assert max(sizes) == 3 and sorted(sizes) == [1, 3, 3]


def test_report_batch_item_failures(lam, deploy, sqs, logs):
    url, arn = _queue(sqs, VisibilityTimeout=2)
    name = deploy(RECORDER, timeout=2)  # Lambda refuses a mapping whose function outlives the visibility
    lam.create_event_source_mapping(
        EventSourceArn=arn,
        FunctionName=name,
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(["ok1", "fail-me", "ok2"])],
    )
    wait_until(lambda: _batches(logs, name))
    # only the reported item stays and comes back after the visibility timeout
    wait_until(lambda: len(_batches(logs, name)) >= 2, timeout=10)
    second = _batches(logs, name)[1]
    assert [r["body"] for r in second] == ["fail-me"]
    assert second[0]["attributes"]["ApproximateReceiveCount"] == "2"


def test_function_error_keeps_the_batch_then_redrive_to_dlq(lam, deploy, sqs, logs):
    dlq_url, dlq_arn = _queue(sqs)
    url, arn = _queue(
        sqs,
        VisibilityTimeout=1,
        RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
    )
    name = deploy(RECORDER, timeout=1)
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=10)
    sqs.send_message(QueueUrl=url, MessageBody="crash")
    moved = wait_until(
        lambda: sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages"), timeout=15
    )
    assert moved[0]["Body"] == "crash"
    counts = [b[0]["attributes"]["ApproximateReceiveCount"] for b in _batches(logs, name)]
    assert counts == ["1", "2"]


def test_disabled_and_deleted_mappings_are_not_polled(lam, deploy, sqs, logs, local_aws):
    url, arn = _queue(sqs, VisibilityTimeout=5)
    name = deploy(RECORDER)
    uuid = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, BatchSize=10, Enabled=False
    )["UUID"]
    sqs.send_message(QueueUrl=url, MessageBody="while disabled")
    time.sleep(0.5)  # several poll intervals
    assert _batches(logs, name) == []
    assert _count(sqs, url) == 1
    lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    wait_until(lambda: _batches(logs, name))
    lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    time.sleep(0.3)
    sqs.send_message(QueueUrl=url, MessageBody="disabled again")
    time.sleep(0.5)
    assert len(_batches(logs, name)) == 1
    lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    wait_until(lambda: len(_batches(logs, name)) == 2)
    lam.delete_event_source_mapping(UUID=uuid)
    time.sleep(0.3)
    sqs.send_message(QueueUrl=url, MessageBody="after delete")
    time.sleep(0.5)
    assert len(_batches(logs, name)) == 2
    assert _count(sqs, url) == 1


def test_maximum_concurrency_is_honoured(lam, deploy, sqs, logs):
    url, arn = _queue(sqs, VisibilityTimeout=10)
    name = deploy(
        "import time, os\n"
        "def handler(event, context):\n"
        "    print('BEGIN', time.time())\n"
        "    time.sleep(0.4)\n"
        "    print('FINISH', time.time())\n"
    )
    lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, BatchSize=1, ScalingConfig={"MaximumConcurrency": 2}
    )
    for i in range(4):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    wait_until(lambda: _count(sqs, url) == 0, timeout=10)
    marks = []
    for message in log_messages(logs, f"/aws/lambda/{name}"):
        if message.startswith(("BEGIN", "FINISH")):
            kind, stamp = message.split()
            marks.append((float(stamp), 1 if kind == "BEGIN" else -1))
    running = peak = 0
    for _, delta in sorted(marks):
        running += delta
        peak = max(peak, running)
    assert peak == 2
