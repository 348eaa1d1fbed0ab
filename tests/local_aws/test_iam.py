"""IAM enforcement of the local AWS (setting ``iam``): who may do what, and how a refusal reads.

Each test starts its own local AWS (``iam`` on or off) so the session's shared one is not affected;
moto's IAM state is process-wide, so names are unique.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from pipeskit.local import LocalAWS
from pipeskit.local.iam import ADMIN_USER_NAME, Check, evaluate
from pipeskit.local.pytest_plugin import TEST_SETTINGS
from pipeskit.local.settings import LocalAWSSettings
from pipeskit.local.testing import zip_files

ACCOUNT = "123456789012"
REGION = "us-east-1"

WRITER = """
import boto3

def handler(event, context):
    s3 = boto3.client("s3")
    results = {"caller": boto3.client("sts").get_caller_identity()["Arn"]}
    for key in event["keys"]:
        try:
            s3.put_object(Bucket=event["bucket"], Key=key, Body=b"written")
            results[key] = "ok"
        except Exception as error:
            results[key] = {"code": error.response["Error"]["Code"], "message": error.response["Error"]["Message"]}
    return results
"""


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(action: str | list[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def _start(iam: bool) -> LocalAWS:
    return LocalAWS(LocalAWSSettings.from_env(**{**TEST_SETTINGS, "iam": iam, "quiet": True})).start()


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAWS]:
    """A local AWS of the module's own that enforces IAM (each test names what it makes uniquely)."""
    server = _start(iam=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def open_aws() -> Iterator[LocalAWS]:
    """A local AWS of the test's own that enforces nothing (the default)."""
    server = _start(iam=False)
    try:
        yield server
    finally:
        server.stop()


def _user_client(aws: LocalAWS, service: str, *statements: dict[str, Any]) -> Any:
    """A client for a new IAM user whose only policy holds ``statements``."""
    iam = aws.client("iam")
    name = _unique("user")
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="only", PolicyDocument=_document(*statements))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return _client(aws, service, key["AccessKeyId"], key["SecretAccessKey"])


def _client(aws: LocalAWS, service: str, key_id: str, secret: str, token: str | None = None) -> Any:
    session = boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, aws_session_token=token, region_name=REGION
    )
    return session.client(
        service, endpoint_url=aws.endpoint_url, config=Config(retries={"total_max_attempts": 1})
    )


def _refused(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]  # type: ignore[no-any-return]


def _role(aws: LocalAWS, *statements: dict[str, Any]) -> str:
    iam = aws.client("iam")
    name = _unique("role")
    trust = _document({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"})
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="grants", PolicyDocument=_document(*statements))
    return arn  # type: ignore[no-any-return]


def test_a_function_writes_under_its_prefix_and_is_refused_another_sessions_prefix(aws: LocalAWS) -> None:
    bucket = _unique("sessions")
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    role = _role(aws, _allow("s3:PutObject", f"arn:aws:s3:::{bucket}/prefix-a/*"))
    lam = aws.client("lambda", retries=0, read_timeout=60)
    name = _unique("writer")
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
        Code={"ZipFile": zip_files({"app.py": WRITER})}, Timeout=30,
    )

    response = lam.invoke(
        FunctionName=name, Payload=json.dumps({"bucket": bucket, "keys": ["prefix-a/m.json", "prefix-b/m.json"]})
    )

    assert "FunctionError" not in response
    results = json.loads(response["Payload"].read())
    assert results["caller"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role.split('/')[-1]}/{name}"
    assert results["prefix-a/m.json"] == "ok"
    refusal = results["prefix-b/m.json"]
    assert refusal["code"] == "AccessDenied"
    assert refusal["message"].startswith(f"User: {results['caller']} is not authorized to perform: s3:PutObject")
    assert f'on resource: "arn:aws:s3:::{bucket}/prefix-b/m.json"' in refusal["message"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["prefix-a/m.json"]


@pytest.fixture
def resources(aws: LocalAWS) -> dict[str, str]:
    """A bucket with an object, a queue, a log group with a stream and a function, made by the administrator."""
    bucket, queue, group, stream = _unique("bucket"), _unique("queue"), f"/test/{_unique('group')}", "stream-1"
    aws.client("s3").create_bucket(Bucket=bucket)
    aws.client("s3").put_object(Bucket=bucket, Key="data/object.json", Body=b"{}")
    queue_url = aws.client("sqs").create_queue(QueueName=queue)["QueueUrl"]
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    function = _unique("fn")
    aws.client("lambda").create_function(
        FunctionName=function, Runtime="python3.12", Role=_role(aws, _allow("s3:ListBucket", "*")),
        Handler="app.handler", Code={"ZipFile": zip_files({"app.py": "def handler(event, context):\n    return 1\n"})},
    )
    return {"bucket": bucket, "queue": queue, "queue_url": queue_url, "group": group, "stream": stream,
            "function": function}


#: (service, call, IAM action, resource ARN template, error code)
CALLS = [
    ("s3", lambda c, r: c.put_object(Bucket=r["bucket"], Key="data/new.json", Body=b"x"),
     "s3:PutObject", '"arn:aws:s3:::{bucket}/data/new.json"', "AccessDenied"),
    ("s3", lambda c, r: c.get_object(Bucket=r["bucket"], Key="data/object.json"),
     "s3:GetObject", '"arn:aws:s3:::{bucket}/data/object.json"', "AccessDenied"),
    ("s3", lambda c, r: c.list_objects_v2(Bucket=r["bucket"], Prefix="data/"),
     "s3:ListBucket", '"arn:aws:s3:::{bucket}"', "AccessDenied"),
    ("s3", lambda c, r: c.delete_objects(Bucket=r["bucket"], Delete={"Objects": [{"Key": "data/object.json"}]}),
     "s3:DeleteObject", '"arn:aws:s3:::{bucket}/data/object.json"', "AccessDenied"),
    ("sqs", lambda c, r: c.send_message(QueueUrl=r["queue_url"], MessageBody="item"),
     "sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{{queue}}", "AccessDenied"),
    ("sqs", lambda c, r: c.receive_message(QueueUrl=r["queue_url"]),
     "sqs:ReceiveMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{{queue}}", "AccessDenied"),
    ("logs", lambda c, r: c.filter_log_events(logGroupName=r["group"]),
     "logs:FilterLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{{group}}:*", "AccessDeniedException"),
    ("logs", lambda c, r: c.get_log_events(logGroupName=r["group"], logStreamName=r["stream"]),
     "logs:GetLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{{group}}:log-stream:{{stream}}",
     "AccessDeniedException"),
    ("lambda", lambda c, r: c.invoke(FunctionName=r["function"], Payload=b"{}"),
     "lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{{function}}", "AccessDeniedException"),
    ("lambda", lambda c, r: c.invoke(FunctionName=r["function"], InvocationType="Event", Qualifier="$LATEST"),
     "lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{{function}}:$LATEST",
     "AccessDeniedException"),
    ("lambda", lambda c, r: c.get_function_configuration(FunctionName=r["function"]),
     "lambda:GetFunctionConfiguration", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{{function}}",
     "AccessDeniedException"),
]


@pytest.mark.parametrize("service, call, action, resource, code", CALLS, ids=[c[2] for c in CALLS])
def test_a_caller_without_the_grant_is_refused_naming_action_and_resource(
    aws: LocalAWS, resources: dict[str, str], service: str, call: Any, action: str, resource: str, code: str
) -> None:
    unrelated = _allow(["s3:GetObject", "sqs:SendMessage", "logs:GetLogEvents", "lambda:InvokeFunction"],
                       "arn:aws:s3:::some-other-bucket/*")
    client = _user_client(aws, service, unrelated)

    error = _refused(lambda: call(client, resources))

    assert error["Code"] == code
    user = error["Message"].split(" ")[1]
    assert user.startswith(f"arn:aws:iam::{ACCOUNT}:user/user-")
    assert error["Message"] == (
        f"User: {user} is not authorized to perform: {action} on resource: {resource.format(**resources)} "
        f"because no identity-based policy allows the {action} action"
    )


def test_grants_scoped_to_the_resources_allow_exactly_them(aws: LocalAWS, resources: dict[str, str]) -> None:
    r = resources
    function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{r['function']}"
    group_arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{r['group']}:*"
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{r['queue']}"
    grants = [
        _allow(["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"], [function_arn, f"{function_arn}:*"]),
        _allow(["s3:GetObject", "s3:DeleteObject"], f"arn:aws:s3:::{r['bucket']}/data/*"),
        _allow("s3:ListBucket", f"arn:aws:s3:::{r['bucket']}"),
        _allow(["logs:GetLogEvents", "logs:FilterLogEvents", "logs:DescribeLogStreams"], group_arn),
        _allow(["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], queue_arn),
    ]
    s3, sqs, logs, lam = (_user_client(aws, service, *grants) for service in ("s3", "sqs", "logs", "lambda"))

    assert json.loads(lam.invoke(FunctionName=r["function"], Payload=b"{}")["Payload"].read()) == 1
    assert lam.invoke(FunctionName=r["function"], Qualifier="$LATEST", Payload=b"{}")["StatusCode"] == 200
    assert lam.get_function_configuration(FunctionName=r["function"])["FunctionName"] == r["function"]
    assert s3.get_object(Bucket=r["bucket"], Key="data/object.json")["Body"].read() == b"{}"
    assert s3.head_object(Bucket=r["bucket"], Key="data/object.json")["ContentLength"] == 2
    assert s3.list_objects_v2(Bucket=r["bucket"])["KeyCount"] == 1
    s3.head_bucket(Bucket=r["bucket"])
    assert "events" in logs.filter_log_events(logGroupName=r["group"])
    assert "events" in logs.get_log_events(logGroupName=r["group"], logStreamName=r["stream"])
    assert "logStreams" in logs.describe_log_streams(logGroupName=r["group"])
    sqs.send_message_batch(QueueUrl=r["queue_url"], Entries=[{"Id": "1", "MessageBody": "a"}])
    messages = sqs.receive_message(QueueUrl=r["queue_url"], WaitTimeSeconds=1)["Messages"]
    sqs.delete_message_batch(QueueUrl=r["queue_url"],
                             Entries=[{"Id": "1", "ReceiptHandle": messages[0]["ReceiptHandle"]}])
    s3.delete_objects(Bucket=r["bucket"], Delete={"Objects": [{"Key": "data/object.json"}]})

    assert _refused(lambda: s3.put_object(Bucket=r["bucket"], Key="data/x", Body=b""))["Code"] == "AccessDenied"
    assert _refused(lambda: s3.head_object(Bucket=r["bucket"], Key="other/x"))["Code"] in ("403", "AccessDenied")
    assert _refused(lambda: sqs.purge_queue(QueueUrl=r["queue_url"]))["Code"] == "AccessDenied"
    assert _refused(lambda: logs.describe_log_groups())["Code"] == "AccessDeniedException"
    assert _refused(lambda: lam.list_functions())["Code"] == "AccessDeniedException"


def test_an_explicit_deny_wins_and_a_refused_invoke_runs_nothing(aws: LocalAWS, resources: dict[str, str]) -> None:
    r = resources
    lam = _user_client(
        aws, "lambda", _allow("lambda:*", "*"),
        {"Effect": "Deny", "Action": "lambda:InvokeFunction", "Resource": "*"},
    )

    error = _refused(lambda: lam.invoke(FunctionName=r["function"], Payload=b"{}"))

    assert error["Code"] == "AccessDeniedException"
    assert error["Message"].endswith("with an explicit deny in an identity-based policy")
    assert lam.get_function(FunctionName=r["function"])["Configuration"]["FunctionName"] == r["function"]
    assert aws.runtime is not None and aws.runtime.pool.busy_count(
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{r['function']}") == 0
    assert not aws.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{r['function']}")["logGroups"]


def test_the_administrator_can_do_everything_and_unknown_keys_are_refused(aws: LocalAWS) -> None:
    env = aws.env()
    assert "AWS_SESSION_TOKEN" not in env
    assert aws.client("sts").get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{ADMIN_USER_NAME}"
    admin = _client(aws, "s3", env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    bucket = _unique("admin")
    admin.create_bucket(Bucket=bucket)
    admin.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert admin.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    assert "Functions" in aws.client("lambda").list_functions()
    assert "logGroups" in aws.client("logs").describe_log_groups()
    assert "StackSummaries" in aws.client("cloudformation").list_stacks()
    aws.client("ssm").put_parameter(Name=f"/iam/{bucket}", Value="v", Type="String")

    assert _refused(lambda: _client(aws, "s3", "testing", "testing", "testing").list_buckets())["Code"] in (
        "InvalidToken", "InvalidAccessKeyId")
    assert _refused(lambda: _client(aws, "sqs", "testing", "testing").list_queues())["Code"] == "InvalidClientTokenId"
    assert _refused(lambda: _client(aws, "lambda", "AKIAUNKNOWN", "x").list_functions())["Code"] == (
        "UnrecognizedClientException")


def test_without_iam_nothing_is_enforced(open_aws: LocalAWS) -> None:
    assert open_aws.env()["AWS_ACCESS_KEY_ID"] == "testing"
    bucket = _unique("open")
    open_aws.client("s3").create_bucket(Bucket=bucket)
    s3 = _user_client(open_aws, "s3")  # a user without any policy
    s3.put_object(Bucket=bucket, Key="anything", Body=b"x")
    assert s3.get_object(Bucket=bucket, Key="anything")["Body"].read() == b"x"
    assert _client(open_aws, "sqs", "testing", "testing").create_queue(QueueName=_unique("q"))["QueueUrl"]


def test_the_iam_setting_parses_like_the_other_booleans() -> None:
    assert LocalAWSSettings().iam is True, "on by default, as on AWS"
    assert LocalAWSSettings.from_env({"PIPESKIT_LOCAL_IAM": "1"}).iam is True
    assert LocalAWSSettings.from_env({"PIPESKIT_LOCAL_IAM": "false"}).iam is False


@pytest.mark.parametrize(
    "statement, check, result",
    [
        (_allow("s3:Get*", "arn:aws:s3:::b/a/*"), Check("s3:GetObject", "arn:aws:s3:::b/a/k"), "allowed"),
        (_allow("S3:getobject", "arn:aws:s3:::b/a/*"), Check("s3:GetObject", "arn:aws:s3:::b/a/k"), "allowed"),
        (_allow("s3:GetObject", "arn:aws:s3:::b/a/*"), Check("s3:GetObject", "arn:aws:s3:::b/ab/k"), "implicit-deny"),
        (_allow("s3:GetObject", "arn:aws:s3:::b.c/*"), Check("s3:GetObject", "arn:aws:s3:::bxc/k"), "implicit-deny"),
        ({"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::b/*"},
         Check("s3:GetObject", "arn:aws:s3:::b/k"), "implicit-deny"),
        ({"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::b/*"},
         Check("s3:GetObject", "arn:aws:s3:::c/k"), "explicit-deny"),
        ({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}, Check("s3:GetObject", "arn:aws:s3:::c/k"),
         "implicit-deny"),
        ({"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
         Check("s3:GetObject", "arn:aws:s3:::c/k"), "implicit-deny"),
        (_allow("ssm:GetParameter", "arn:aws:ssm:us-east-1:1:parameter/x"), Check("ssm:GetParameter", None),
         "allowed"),
    ],
)
def test_policy_evaluation(statement: dict[str, Any], check: Check, result: str) -> None:
    assert evaluate([_document(statement)], check) == result
