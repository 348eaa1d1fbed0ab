"""IAM enforcement for the local AWS (setting ``iam``): every request is authorized as AWS would.

Design. The check lives in the kit's HTTP front (:class:`pipeskit.local.front.FrontApp`), not in
moto, whose own enforcement (``INITIAL_NO_AUTH_ACTION_COUNT``) stays off:

- Lambda ``Invoke`` never reaches moto (the front serves it), so it needs a check of the kit's own
  whatever moto does;
- moto's enforcement names actions after API operations (``lambda:Invoke``, ``s3:HeadBucket``),
  computes resource ARNs only for S3, SQS, IAM and STS (so a policy scoped to a log group or a
  function never matches), answers JSON-protocol services (SQS, Logs) with XML bodies boto3 cannot
  parse, names neither action nor resource for S3, and refuses body-less Lambda requests on a
  signature bug. Patching each of those in moto's private code would be more code, tied to one
  moto version, than computing the action and the resource here;
- one switch that is the kit's own: the setting is read on every request, like the fault settings,
  and moto's process-global request counter is left alone (other servers in the process share it).

What the front does with the setting on (:meth:`Authorizer.check`):

1. **authenticate**: the SigV4 access key (``Authorization`` header, or a presigned URL's
   ``X-Amz-Credential``) must belong to an identity of moto's IAM (a user's access key) or STS (an
   assumed role's temporary key with its session token): moto's own ``create_access_key`` resolves
   it. The signature itself is not verified (the secret is not checked);
2. **compute what is asked**: the IAM action(s) and resource ARN(s) of the request, per service
   (S3, SQS, CloudWatch Logs, Lambda, STS, IAM, in this module); other services get their action
   from the request (query ``Action``, ``X-Amz-Target``, or botocore's model of a REST API) and an
   unknown resource;
3. **evaluate** the identity's policies (a user's inline, attached and group policies; an assumed
   role's inline and attached ones, collected by moto's ``collect_policies``; documents loaded by
   moto's ``IAMPolicy``): an explicit Deny wins, else an Allow is needed. Where this cannot decide
   as AWS would, it errs towards allowing, so a refusal always names a grant that is really missing:
   a statement with a ``Condition`` counts as an Allow that applies and a Deny that does not; an
   unknown resource is matched by any ``Resource`` of an Allow and only by ``*`` of a Deny;
4. **refuse** in the service's own error format (S3 REST-XML, SQS JSON with its query error code,
   Logs JSON, Lambda REST-JSON, query XML for STS/IAM and others): ``AccessDenied`` /
   ``AccessDeniedException`` with AWS's message ``User: <arn> is not authorized to perform:
   <action> on resource: <arn> because no identity-based policy allows the <action> action``.

Not modelled: resource-based policies (bucket, queue, function policies), permission boundaries,
session policies, SCPs, conditions, policy variables, signature checks and credential expiry. A
``DeleteObjects`` naming one key the caller may not delete is refused as a whole (S3 deletes the
others and reports that key in its result). The
kit's own machinery (event source mappings, asynchronous invocations and their destinations, the
log writer) calls moto's backends directly and is never checked, so what an execution role needs
for them (``sqs:ReceiveMessage`` on a mapped queue, ``logs:PutLogEvents``, ``sqs:SendMessage`` to a
destination) is not enforced.

The administrator (user :data:`ADMIN_USER_NAME`, allowed everything) is created when first needed;
:meth:`pipeskit.local.LocalAWS.client` and :meth:`~pipeskit.local.LocalAWS.env` use its keys.
Each execution environment gets temporary credentials of its function's execution role from
moto's STS (session name: the function's name), as Lambda does.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from pipeskit.local.errors import LocalAWSError
from pipeskit.local.settings import LocalAWSSettings

logger = logging.getLogger(__name__)

ADMIN_USER_NAME = "pipeskit-local-admin"
ADMIN_POLICY_NAME = "AdministratorAccess"
_ALLOW_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
#: Temporary credentials of an execution role last this long (Lambda refreshes them; no expiry is checked).
ROLE_SESSION_SECONDS = 43200
_PARTITION = "aws"

_CREDENTIAL = re.compile(
    r"Credential=(?P<key>[^/,\s]+)/(?P<date>[^/]+)/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request"
)
_LOGS_PREFIX = "Logs_20140328."
_SQS_PREFIX = "AmazonSQS."


# -- what a request asks ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Check:
    """One IAM action on one resource that a request needs.

    Attributes:
        action: e.g. ``s3:PutObject``.
        resource: The resource ARN, ``*`` for actions without a resource, or ``None`` when the
            resource is not computed for this service (any ``Resource`` of an Allow matches).
    """

    action: str
    resource: str | None


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who signed a request: the SigV4 credential scope and the security token."""

    access_key_id: str
    region: str
    service: str
    session_token: str | None


@dataclasses.dataclass(frozen=True)
class Refusal:
    """An error answered instead of serving the request, in the service's own format."""

    service: str
    protocol: str  # rest-xml (S3), json (X-Amz-Target), rest-json (Lambda), query (XML)
    code: str
    message: str
    status: int
    query_code: str | None = None  # SQS JSON: the query-protocol code boto3 reports

    def respond(self, start_response: Callable[..., Any], method: str) -> Iterable[bytes]:
        """Write the error response; returns the body."""
        headers: list[tuple[str, str]] = [("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")]
        if self.protocol == "rest-xml":
            body = b"" if method == "HEAD" else (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message>"
                "<RequestId>0000000000000000</RequestId></Error>"
            ).encode()
            headers.append(("Content-Type", "application/xml"))
        elif self.protocol == "json":
            body = json.dumps({"__type": self.code, "message": self.message}).encode()
            headers.append(("Content-Type", "application/x-amz-json-1.0" if self.service == "sqs"
                            else "application/x-amz-json-1.1"))
            if self.query_code:
                headers.append(("x-amzn-query-error", f"{self.query_code};Sender"))
        elif self.protocol == "rest-json":
            body = json.dumps({"Type": "User", "Message": self.message}).encode()
            headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", self.code)]
        else:
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>Sender</Type>'
                f"<Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message></Error>"
                "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
            ).encode()
            headers.append(("Content-Type", "text/xml"))
        headers.append(("Content-Length", str(len(body))))
        reason = {400: "Bad Request", 403: "Forbidden"}.get(self.status, "Error")
        start_response(f"{self.status} {reason}", headers)
        return [body]


def _protocol(service: str, environ: dict[str, Any]) -> str:
    if service == "s3":
        return "rest-xml"
    if environ.get("HTTP_X_AMZ_TARGET"):
        return "json"
    if service == "lambda" or environ.get("PATH_INFO", "").startswith("/20"):
        return "rest-json"
    return "query"


def _refusal(service: str, environ: dict[str, Any], kind: str, message: str) -> Refusal:
    """A refusal of ``kind`` (``denied``, ``unknown-key``, ``bad-token``, ``anonymous``)."""
    protocol = _protocol(service, environ)
    if protocol == "rest-xml":
        code, status = {
            "denied": ("AccessDenied", 403),
            "anonymous": ("AccessDenied", 403),
            "unknown-key": ("InvalidAccessKeyId", 403),
            "bad-token": ("InvalidToken", 400),
        }[kind]
        return Refusal(service, protocol, code, message, status)
    if kind == "denied":
        if protocol == "json" and service == "sqs":
            return Refusal(service, protocol, "com.amazon.coral.service#AccessDeniedException", message, 403,
                           query_code="AccessDenied")
        if protocol == "json":
            return Refusal(service, protocol, "AccessDeniedException", message, 400)
        if protocol == "rest-json":
            return Refusal(service, protocol, "AccessDeniedException", message, 403)
        return Refusal(service, protocol, "AccessDenied", message, 403)
    if kind == "anonymous":
        code = "MissingAuthenticationTokenException" if protocol != "query" else "MissingAuthenticationToken"
        return Refusal(service, protocol, code, message, 403)
    if protocol == "query" or service == "sqs":
        return Refusal(service, protocol, "InvalidClientTokenId", message, 403,
                       query_code="InvalidClientTokenId" if protocol == "json" else None)
    return Refusal(service, protocol, "UnrecognizedClientException", message, 403 if protocol == "rest-json" else 400)


# -- policy evaluation -------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _pattern(value: str, ignore_case: bool) -> re.Pattern[str]:
    """An IAM wildcard (``*``, ``?``) as a regular expression; everything else literal."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _values(element: Any) -> list[str]:
    if element is None:
        return []
    return [element] if isinstance(element, str) else [str(v) for v in element]


def _matches_any(patterns: list[str], value: str, *, ignore_case: bool) -> bool:
    return any(_pattern(p, ignore_case).fullmatch(value) for p in patterns)


def _statement_effect(statement: dict[str, Any], check: Check) -> str | None:
    """``Allow``/``Deny`` when ``statement`` applies to ``check``, else ``None``."""
    effect = statement.get("Effect")
    if "NotAction" in statement:
        if _matches_any(_values(statement["NotAction"]), check.action, ignore_case=True):
            return None
    elif not _matches_any(_values(statement.get("Action")), check.action, ignore_case=True):
        return None
    if statement.get("Condition") and effect == "Deny":
        return None  # conditions are not evaluated: a conditional Deny is not applied
    if check.resource is None:  # resource not computed: any Allow, and only a Deny of everything
        if effect == "Allow":
            return effect
        resources = _values(statement.get("Resource"))
        return effect if "*" in resources and "NotResource" not in statement else None
    if "NotResource" in statement:
        if _matches_any(_values(statement["NotResource"]), check.resource, ignore_case=False):
            return None
        return effect
    if _matches_any(_values(statement.get("Resource")), check.resource, ignore_case=False):
        return effect
    return None


def _statements(policy: Any) -> Iterator[dict[str, Any]]:
    from moto.iam.access_control import IAMPolicy

    try:
        # moto's CloudFormation stores a template's inline policies as documents, not JSON text
        document = policy if isinstance(policy, dict) and "Statement" in policy else IAMPolicy(policy)._policy_json
    except (StopIteration, KeyError, TypeError, ValueError):  # no default version, not JSON
        logger.warning("ignoring a policy that cannot be read: %r", policy)
        return
    statements = document.get("Statement", [])
    yield from [statements] if isinstance(statements, dict) else statements


def evaluate(policies: Iterable[Any], check: Check) -> str:
    """``allowed``, ``explicit-deny`` or ``implicit-deny`` for ``check`` under ``policies``.

    Args:
        policies: Policies as moto's ``collect_policies`` returns them (managed ``Policy`` objects,
            inline policy dicts or documents).
        check: What is asked.
    """
    allowed = False
    for policy in policies:
        for statement in _statements(policy):
            effect = _statement_effect(statement, check)
            if effect == "Deny":
                return "explicit-deny"
            if effect == "Allow":
                allowed = True
    return "allowed" if allowed else "implicit-deny"


def denial_message(principal_arn: str, check: Check, result: str, service: str) -> str:
    """AWS's access-denied message naming the principal, the action and the resource."""
    resource = check.resource if check.resource is not None else "*"
    if service == "s3":
        resource = f'"{resource}"'
    because = (
        "with an explicit deny in an identity-based policy"
        if result == "explicit-deny"
        else f"because no identity-based policy allows the {check.action} action"
    )
    return f"User: {principal_arn} is not authorized to perform: {check.action} on resource: {resource} {because}"


# -- the request's body ------------------------------------------------------------------


def _body(environ: dict[str, Any]) -> bytes:
    """The request body, read once and put back for whoever serves the request."""
    cached = environ.get("pipeskit.body")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    stream = environ.get("wsgi.input")
    length = environ.get("CONTENT_LENGTH")
    if stream is None:
        data = b""
    elif length:
        data = stream.read(int(length))
    elif environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked" or environ.get("wsgi.input_terminated"):
        data = stream.read()
    else:
        data = b""
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ["pipeskit.body"] = data
    return data


def _json_body(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(_body(environ) or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _params(environ: dict[str, Any]) -> dict[str, str]:
    """Query-protocol parameters: the URL's query and a form body."""
    params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    if environ.get("REQUEST_METHOD") == "POST" and "form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        params.update(parse_qsl(_body(environ).decode("utf-8", "replace"), keep_blank_values=True))
    return params


def _path(environ: dict[str, Any]) -> str:
    """``PATH_INFO`` as text (WSGI hands it over as latin-1 decoded bytes)."""
    path = environ.get("PATH_INFO", "")
    try:
        return path.encode("latin-1").decode("utf-8")  # type: ignore[no-any-return]
    except UnicodeError:
        return path  # type: ignore[no-any-return]


# -- per service: the action and the resource ---------------------------------------------

_S3_BUCKET_GET = {
    "accelerate": "GetAccelerateConfiguration", "acl": "GetBucketAcl", "analytics": "GetAnalyticsConfiguration",
    "cors": "GetBucketCORS", "encryption": "GetEncryptionConfiguration",
    "intelligent-tiering": "GetIntelligentTieringConfiguration", "inventory": "GetInventoryConfiguration",
    "lifecycle": "GetLifecycleConfiguration", "location": "GetBucketLocation", "logging": "GetBucketLogging",
    "metrics": "GetMetricsConfiguration", "notification": "GetBucketNotification",
    "object-lock": "GetBucketObjectLockConfiguration", "ownershipControls": "GetBucketOwnershipControls",
    "policy": "GetBucketPolicy", "policyStatus": "GetBucketPolicyStatus",
    "publicAccessBlock": "GetBucketPublicAccessBlock", "replication": "GetReplicationConfiguration",
    "requestPayment": "GetBucketRequestPayment", "tagging": "GetBucketTagging", "uploads": "ListBucketMultipartUploads",
    "versioning": "GetBucketVersioning", "versions": "ListBucketVersions", "website": "GetBucketWebsite",
}
_S3_BUCKET_PUT = {
    "accelerate": "PutAccelerateConfiguration", "acl": "PutBucketAcl", "cors": "PutBucketCORS",
    "encryption": "PutEncryptionConfiguration", "lifecycle": "PutLifecycleConfiguration",
    "logging": "PutBucketLogging", "notification": "PutBucketNotification",
    "object-lock": "PutBucketObjectLockConfiguration", "ownershipControls": "PutBucketOwnershipControls",
    "policy": "PutBucketPolicy", "publicAccessBlock": "PutBucketPublicAccessBlock",
    "replication": "PutReplicationConfiguration", "requestPayment": "PutBucketRequestPayment",
    "tagging": "PutBucketTagging", "versioning": "PutBucketVersioning", "website": "PutBucketWebsite",
}
_S3_BUCKET_DELETE = {
    "cors": "PutBucketCORS", "encryption": "PutEncryptionConfiguration", "lifecycle": "PutLifecycleConfiguration",
    "ownershipControls": "PutBucketOwnershipControls", "policy": "DeleteBucketPolicy",
    "publicAccessBlock": "PutBucketPublicAccessBlock", "replication": "PutReplicationConfiguration",
    "tagging": "PutBucketTagging", "website": "DeleteBucketWebsite",
}
_S3_OBJECT_GET = {
    "acl": "GetObjectAcl", "attributes": "GetObjectAttributes", "legal-hold": "GetObjectLegalHold",
    "retention": "GetObjectRetention", "tagging": "GetObjectTagging", "torrent": "GetObjectTorrent",
    "uploadId": "ListMultipartUploadParts",
}
_S3_OBJECT_PUT = {
    "acl": "PutObjectAcl", "legal-hold": "PutObjectLegalHold", "retention": "PutObjectRetention",
    "tagging": "PutObjectTagging",
}
_S3_OBJECT_DELETE = {"tagging": "DeleteObjectTagging", "uploadId": "AbortMultipartUpload"}
_S3_OBJECT_POST = {"restore": "RestoreObject", "select": "GetObject"}
_S3_VERSIONED = {"GetObject": "GetObjectVersion", "DeleteObject": "DeleteObjectVersion",
                 "GetObjectTagging": "GetObjectVersionTagging", "PutObjectTagging": "PutObjectVersionTagging",
                 "DeleteObjectTagging": "DeleteObjectVersionTagging", "GetObjectAcl": "GetObjectVersionAcl",
                 "PutObjectAcl": "PutObjectVersionAcl"}


def _s3_bucket_and_key(environ: dict[str, Any]) -> tuple[str, str]:
    host = environ.get("HTTP_HOST", "").rsplit(":", 1)[0].lower()
    path = _path(environ)
    bucket = ""
    if host.endswith(".localhost"):
        bucket = host[: -len(".localhost")]
    elif ".s3." in host or ".s3-" in host:
        bucket = re.split(r"\.s3[.-]", host, maxsplit=1)[0]
    if bucket:
        return bucket, path.lstrip("/")
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


def _subresource(query: dict[str, list[str]], table: dict[str, str]) -> str | None:
    for name, action in table.items():
        if name in query:
            return action
    return None


def _s3_checks(environ: dict[str, Any]) -> list[Check]:
    method = environ.get("REQUEST_METHOD", "GET")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    bucket, key = _s3_bucket_and_key(environ)
    if not bucket:
        return [Check("s3:ListAllMyBuckets", "*")]
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if not key:
        if method == "POST" and "delete" in query:
            return _s3_delete_objects(environ, bucket_arn) or [Check("s3:DeleteObject", f"{bucket_arn}/*")]
        if method == "POST":
            return [Check("s3:PutObject", None)]  # a browser form upload: the key is in the form
        action = {
            "GET": _subresource(query, _S3_BUCKET_GET) or "ListBucket",
            "HEAD": "ListBucket",
            "PUT": _subresource(query, _S3_BUCKET_PUT) or "CreateBucket",
            "DELETE": _subresource(query, _S3_BUCKET_DELETE) or "DeleteBucket",
        }.get(method, "ListBucket")
        return [Check(f"s3:{action}", bucket_arn)]
    object_arn = f"{bucket_arn}/{key}"
    if method in ("GET", "HEAD"):
        action = (_subresource(query, _S3_OBJECT_GET) if method == "GET" else None) or "GetObject"
    elif method == "PUT":
        action = _subresource(query, _S3_OBJECT_PUT) or "PutObject"
    elif method == "DELETE":
        action = _subresource(query, _S3_OBJECT_DELETE) or "DeleteObject"
    else:  # POST: multipart create/complete, restore, select
        action = _subresource(query, _S3_OBJECT_POST) or "PutObject"
    if "versionId" in query:
        action = _S3_VERSIONED.get(action, action)
    checks = [Check(f"s3:{action}", object_arn)]
    source = environ.get("HTTP_X_AMZ_COPY_SOURCE")
    if method == "PUT" and source and action == "PutObject":  # CopyObject, UploadPartCopy: read the source
        source_path, _, source_query = unquote(source).partition("?")
        versioned = "versionId=" in source_query
        checks.append(Check("s3:GetObjectVersion" if versioned else "s3:GetObject",
                            f"arn:aws:s3:::{source_path.lstrip('/')}"))
    return checks


def _s3_delete_objects(environ: dict[str, Any], bucket_arn: str) -> list[Check]:
    """DeleteObjects: ``s3:DeleteObject`` (or ``DeleteObjectVersion``) on each key."""
    try:
        root = ElementTree.fromstring(_body(environ))
    except ElementTree.ParseError:
        return []
    checks = []
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] != "Object":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: child.text or "" for child in element}
        action = "s3:DeleteObjectVersion" if fields.get("VersionId") else "s3:DeleteObject"
        checks.append(Check(action, f"{bucket_arn}/{fields.get('Key', '')}"))
    return checks


_SQS_BATCHES = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _sqs_checks(environ: dict[str, Any], caller: Caller, account_id: str) -> list[Check]:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        operation = target.rsplit(".", 1)[-1]
        params: dict[str, Any] = _json_body(environ)
    else:
        params = _params(environ)
        operation = params.get("Action", "")
    queue_url = str(params.get("QueueUrl") or "")
    if not queue_url and not target and re.fullmatch(r"/\d{12}/[^/]+/?", _path(environ)):
        queue_url = _path(environ)  # query protocol posted to the queue's URL
    action = f"sqs:{_SQS_BATCHES.get(operation, operation)}"
    if queue_url:
        parts = [p for p in queue_url.split("?", 1)[0].split("/") if p]
        queue_account, name = (parts[-2], parts[-1]) if len(parts) >= 2 else (account_id, parts[-1])
        return [Check(action, f"arn:aws:sqs:{caller.region}:{queue_account}:{name}")]
    if params.get("QueueName"):
        owner = str(params.get("QueueOwnerAWSAccountId") or account_id)
        return [Check(action, f"arn:aws:sqs:{caller.region}:{owner}:{params['QueueName']}")]
    return [Check(action, "*")]


#: Logs operations whose resource is a log stream (when a stream is named).
_LOGS_STREAM_OPERATIONS = {"GetLogEvents", "PutLogEvents", "DeleteLogStream"}


def _logs_checks(environ: dict[str, Any], caller: Caller, account_id: str) -> list[Check]:
    operation = environ.get("HTTP_X_AMZ_TARGET", "")[len(_LOGS_PREFIX):]
    params = _json_body(environ)
    action = f"logs:{operation}"
    base = f"arn:aws:logs:{caller.region}:{account_id}:log-group:"
    groups: list[str] = []
    for field in ("logGroupName", "logGroupIdentifier"):
        value = params.get(field)
        if isinstance(value, str) and value:
            groups.append(value)
    for field in ("logGroupNames", "logGroupIdentifiers"):
        value = params.get(field)
        if isinstance(value, list):
            groups += [str(v) for v in value]
    if not groups:
        if operation == "DescribeLogGroups":
            return [Check(action, f"{base}*")]
        return [Check(action, "*")]
    checks = []
    for group in groups:
        if group.startswith("arn:"):
            arn = group[:-2] if group.endswith(":*") else group
        else:
            arn = base + group
        stream = params.get("logStreamName")
        if operation in _LOGS_STREAM_OPERATIONS and isinstance(stream, str) and stream:
            checks.append(Check(action, f"{arn}:log-stream:{stream}"))
        else:
            checks.append(Check(action, f"{arn}:*"))
    return checks


#: Lambda operations whose IAM action has another name.
_LAMBDA_ACTIONS = {
    "Invoke": "InvokeFunction",
    "InvokeWithResponseStream": "InvokeFunction",
    "GetLayerVersionByArn": "GetLayerVersion",
}
_FUNCTION_ARN = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:(?P<region>[^:]+):)?(?:(?P<account>\d{12}):function:)?"
    r"(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?$"
)


@dataclasses.dataclass(frozen=True)
class _RestOperation:
    name: str
    method: str
    pattern: re.Pattern[str]
    literal_length: int


@lru_cache(maxsize=32)
def _rest_operations(service: str) -> tuple[_RestOperation, ...]:
    """A REST API's operations from botocore's model, most specific URI first."""
    import botocore.session

    try:
        model = botocore.session.get_session().get_service_model(service)
    except Exception:  # no model of that name
        return ()
    operations = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri = http.get("requestUri", "/").split("?", 1)[0]
        regex, literal = "", 0
        for piece in re.split(r"(\{[^}]+\})", uri):
            if piece.startswith("{"):
                label = piece[1:-1]
                greedy = label.endswith("+")
                regex += f"(?P<{label.rstrip('+')}>{'.+' if greedy else '[^/]+'})"
            else:
                regex += re.escape(piece)
                literal += len(piece)
        regex = regex.rstrip("/") + "/?"
        operations.append(_RestOperation(name, http.get("method", "GET"), re.compile(regex), literal))
    return tuple(sorted(operations, key=lambda op: -op.literal_length))


def _rest_operation(service: str, method: str, path: str) -> tuple[str, dict[str, str]] | None:
    for operation in _rest_operations(service):
        if operation.method != method:
            continue
        match = operation.pattern.fullmatch(path)
        if match:
            return operation.name, {k: unquote(v) for k, v in match.groupdict().items()}
    return None


def _lambda_checks(environ: dict[str, Any], caller: Caller, account_id: str) -> list[Check]:
    from pipeskit.local.durable import function_of_callback, function_of_execution, is_durable_api, raw_path

    method = environ.get("REQUEST_METHOD", "GET")
    path = raw_path(environ)
    # A durable execution ARN holds '/', sent as %2F: its operation is found in the path as sent.
    found = _rest_operation("lambda", method, path if is_durable_api(path) else environ.get("PATH_INFO", ""))
    if found is None:
        return []
    operation, labels = found
    action = f"lambda:{_LAMBDA_ACTIONS.get(operation, operation)}"
    region = caller.region
    query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
    # The durable-execution operations are authorized on the function version the execution runs
    # (policies grant them on "function:NAME:*"); an execution or callback not of that shape on "*".
    if "DurableExecutionArn" in labels:
        return [Check(action, function_of_execution(labels["DurableExecutionArn"]) or "*")]
    if "CallbackId" in labels:
        return [Check(action, function_of_callback(labels["CallbackId"]) or "*")]
    if "FunctionName" in labels:
        return [Check(action, _function_arn(labels["FunctionName"], query.get("Qualifier"), region, account_id))]
    if operation == "CreateFunction":
        body = _json_body(environ)
        checks = [Check(action, _function_arn(str(body.get("FunctionName", "")), None, region, account_id))]
        if body.get("Role"):
            checks.append(Check("iam:PassRole", str(body["Role"])))
        return checks
    if "LayerName" in labels:
        layer = labels["LayerName"]
        arn = layer if layer.startswith("arn:") else f"arn:aws:lambda:{region}:{account_id}:layer:{layer}"
        if "VersionNumber" in labels:
            arn += f":{labels['VersionNumber']}"
        return [Check(action, arn)]
    if "UUID" in labels:
        return [Check(action, f"arn:aws:lambda:{region}:{account_id}:event-source-mapping:{labels['UUID']}")]
    if "Resource" in labels or "ARN" in labels:
        return [Check(action, labels.get("Resource") or labels["ARN"])]
    return [Check(action, "*")]


def _function_arn(name: str, qualifier: str | None, region: str, account_id: str) -> str:
    match = _FUNCTION_ARN.match(name)
    if not match:
        return f"arn:aws:lambda:{region}:{account_id}:function:{name}"
    arn = (
        f"arn:aws:lambda:{match['region'] or region}:{match['account'] or account_id}:function:{match['name']}"
    )
    qualifier = match["qualifier"] or qualifier
    return f"{arn}:{qualifier}" if qualifier else arn


def _iam_resource(params: dict[str, str], account_id: str) -> str:
    from moto.iam.models import iam_backends

    backend = iam_backends[account_id][_PARTITION]
    if params.get("PolicyArn"):
        return params["PolicyArn"]
    for field, kind, lookup in (
        ("RoleName", "role", backend.get_role),
        ("UserName", "user", backend.get_user),
        ("GroupName", "group", backend.get_group),
        ("InstanceProfileName", "instance-profile", backend.get_instance_profile),
    ):
        if params.get(field):
            try:
                return str(lookup(params[field]).arn)
            except Exception:  # not there (yet): AWS names it with the default path
                return f"arn:aws:iam::{account_id}:{kind}/{params[field]}"
    return "*"


def _query_checks(environ: dict[str, Any], caller: Caller, account_id: str) -> list[Check]:
    params = _params(environ)
    operation = params.get("Action", "")
    if not operation:
        return []
    action = f"{caller.service}:{operation}"
    if caller.service == "sts":
        return [Check(action, params.get("RoleArn") or "*")]
    if caller.service == "iam":
        return [Check(action, _iam_resource(params, account_id))]
    return [Check(action, None)]


def _other_checks(environ: dict[str, Any], caller: Caller) -> list[Check]:
    """Services whose resources are not computed: the action from the request, resource unknown."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return [Check(f"{caller.service}:{target.rsplit('.', 1)[-1]}", None)]
    found = _rest_operation(caller.service, environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", ""))
    if found is not None:
        return [Check(f"{caller.service}:{found[0]}", None)]
    return []


def checks_for(environ: dict[str, Any], caller: Caller, account_id: str) -> list[Check]:
    """What a request needs: one check per action and resource (empty: nothing to authorize)."""
    service = caller.service
    if service == "s3":
        return _s3_checks(environ)
    if service == "sqs":
        return _sqs_checks(environ, caller, account_id)
    if service == "logs" and environ.get("HTTP_X_AMZ_TARGET", "").startswith(_LOGS_PREFIX):
        return _logs_checks(environ, caller, account_id)
    if service == "lambda":
        return _lambda_checks(environ, caller, account_id)
    if not environ.get("HTTP_X_AMZ_TARGET") and not environ.get("PATH_INFO", "/").strip("/"):
        return _query_checks(environ, caller, account_id)
    if service in ("sts", "iam") or "form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        return _query_checks(environ, caller, account_id)
    return _other_checks(environ, caller)


# -- who is calling ----------------------------------------------------------------------


def caller_of(environ: dict[str, Any]) -> Caller | None:
    """The SigV4 credential of a request (header or presigned query), or ``None`` when unsigned."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    token = environ.get("HTTP_X_AMZ_SECURITY_TOKEN")
    if match is None:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        credential = (query.get("X-Amz-Credential") or [""])[0]
        match = _CREDENTIAL.search("Credential=" + credential)
        token = token or (query.get("X-Amz-Security-Token") or [None])[0]
    if match is None:
        return None
    return Caller(match["key"], match["region"], match["service"], token)


def _guess_service(environ: dict[str, Any]) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith(_LOGS_PREFIX):
        return "logs"
    if target.startswith(_SQS_PREFIX):
        return "sqs"
    if target:
        return "unknown"
    if environ.get("PATH_INFO", "").startswith("/20"):
        return "lambda"
    if "form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        return "unknown"
    return "s3"


class Authorizer:
    """IAM for the local AWS: the administrator, execution roles' credentials, request checks.

    Args:
        settings: Returns the current settings (``iam`` is read on every request).
    """

    def __init__(self, settings: Callable[[], LocalAWSSettings]) -> None:
        self._settings = settings
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether requests are authorized (setting ``iam``)."""
        return bool(self._settings().iam)

    def _iam_backend(self) -> Any:
        from moto.iam.models import iam_backends

        return iam_backends[self._settings().account_id][_PARTITION]

    def admin_credentials(self) -> tuple[str, str]:
        """The administrator's access key id and secret (user and key made on first use)."""
        from moto.iam.exceptions import NoSuchEntity

        with self._lock:
            backend = self._iam_backend()
            try:
                user = backend.get_user(ADMIN_USER_NAME)
            except NoSuchEntity:
                user = backend.create_user(self._settings().region, ADMIN_USER_NAME)
            if ADMIN_POLICY_NAME not in backend.list_user_policies(ADMIN_USER_NAME):
                backend.put_user_policy(ADMIN_USER_NAME, ADMIN_POLICY_NAME, _ALLOW_ALL)
            keys = [k for k in user.access_keys if k.status == "Active"]
            key = keys[0] if keys else backend.create_access_key(ADMIN_USER_NAME)
            return key.access_key_id, key.secret_access_key

    def role_credentials(self, role_arn: str, session_name: str) -> tuple[str, str, str]:
        """Temporary credentials of ``role_arn`` from moto's STS, as Lambda gets for a function.

        Returns:
            Access key id, secret access key, session token.
        """
        from moto.sts.models import sts_backends

        s = self._settings()
        role = sts_backends[s.account_id][_PARTITION].assume_role(
            region_name=s.region,
            role_session_name=session_name[:64],
            role_arn=role_arn,
            policy=None,
            duration=ROLE_SESSION_SECONDS,
            external_id=None,
        )
        return role.access_key_id, role.secret_access_key, role.session_token

    def check(self, environ: dict[str, Any]) -> Refusal | None:
        """Authorize a request; ``None`` when it may be served, else the refusal to answer."""
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return None
        caller = caller_of(environ)
        if caller is None:
            service = _guess_service(environ)
            message = "Access Denied" if service == "s3" else "Missing Authentication Token"
            return _refusal(service, environ, "anonymous", message)
        try:
            identity = self._identity(caller)
        except _AuthenticationFailed as failure:
            return _refusal(caller.service, environ, failure.kind, failure.message)
        account_id = self._settings().account_id
        if _CDK_BOOTSTRAP_ROLE.search(str(getattr(identity, "arn", ""))):
            return None  # the CDK CLI's own deployment roles act for the operator (see _CDK_BOOTSTRAP_ROLE)
        for check in checks_for(environ, caller, account_id):
            if check.action == "sts:GetCallerIdentity":
                continue  # always allowed, as on AWS
            try:
                policies = identity.collect_policies()
            except Exception:  # the role or user is gone: nothing grants anything
                policies = []
            result = evaluate(policies, check)
            if result != "allowed":
                message = denial_message(identity.arn, check, result, caller.service)
                logger.info("IAM refused: %s", message)
                return _refusal(caller.service, environ, "denied", message)
        return None

    def _identity(self, caller: Caller) -> Any:
        """moto's view of the caller (an IAM user's key or an assumed role's), with ``arn`` and policies.

        Raises:
            _AuthenticationFailed: The key is unknown or the session token is not the key's.
        """
        from moto.iam.access_control import CreateAccessKeyFailure, create_access_key

        headers = {"X-Amz-Security-Token": caller.session_token} if caller.session_token else {}
        try:
            return create_access_key(self._settings().account_id, _PARTITION, caller.access_key_id, headers)
        except CreateAccessKeyFailure as failure:
            if failure.reason == "InvalidToken":
                raise _AuthenticationFailed(
                    "bad-token", "The security token included in the request is invalid."
                ) from None
            if caller.service == "s3":
                message = "The AWS Access Key Id you provided does not exist in our records."
            else:
                message = "The security token included in the request is invalid."
            raise _AuthenticationFailed("unknown-key", message) from None


_CDK_BOOTSTRAP_ROLE = re.compile(r":assumed-role/cdk-[a-z0-9]+-(deploy|file-publishing|image-publishing|lookup)-role-")
"""The roles `cdk bootstrap` creates for the CDK CLI, trusted as the operator who assumes them: moto's
CloudFormation does not attach a template's ``ManagedPolicyArns`` (the bootstrap gives its deploy role
AWS-managed read grants such as ``cloudformation:DescribeStacks``), so their own policies are not
what CDK relies on. What is enforced is what a deployed stack grants its functions and its users."""


class _AuthenticationFailed(LocalAWSError):
    """The request's access key names no identity (answered as AWS answers an unknown key)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
