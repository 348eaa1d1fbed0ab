"""What went wrong in an AWS call, said once: the one translation of botocore's errors into the kit's.

Every part of the kit that makes an AWS call a user must act on goes through `aws_error` — the
client's sessions (`pipeskit.runner`), fan-outs (`pipeskit.fan_out`), the clients the kit creates
(`pipeskit._boto.AwsTarget`) and ``pipeskit invoke`` (`pipeskit.lambda_commands`) — so a missing
function, a refusal, an endpoint that does not answer, a missing region or missing credentials read
the same everywhere: one line saying what happened, naming the value at fault (function, region,
endpoint, IAM action) and what to do. botocore's error stays chained as the cause.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from .errors import (
    AwsAccessDeniedError,
    AwsCredentialsMissingError,
    AwsEndpointUnreachableError,
    AwsRegionMissingError,
    FunctionNotFoundError,
    LambdaInvokeError,
)

NOT_FOUND = "ResourceNotFoundException"
ACCESS_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied"})
UNRECOGNISED_CREDENTIAL_CODES = frozenset(
    {"UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException", "ExpiredTokenException",
     "SignatureDoesNotMatch", "InvalidAccessKeyId"}
)  # fmt: skip
_CREDENTIAL_CODES = ACCESS_DENIED_CODES | UNRECOGNISED_CREDENTIAL_CODES

REGION_ADVICE = (
    "set the client's region_name, or AWS_DEFAULT_REGION (boto3 does not read AWS_REGION), or use a profile "
    "with a region"
)
ENDPOINT_ADVICE = (
    "check that it is up and reachable from here, or point the client's endpoint_url (AWS_ENDPOINT_URL) at the "
    "right one; unset, AWS's own endpoint of the region is used. For the local AWS, start `pipeskit local` and "
    "export what it prints"
)
CREDENTIALS_ADVICE = (
    "give the orchestrator credentials: the client's profile_name or AWS_PROFILE, AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY, or run it where a role provides them; for the local AWS, export what "
    "`pipeskit local` prints"
)
SSO_ADVICE = "the SSO session is missing or expired: run `aws sso login` and re-run"
_SETUP_ADVICE: tuple[tuple[type[BotoCoreError], str], ...] = (
    (ReadTimeoutError, "the endpoint accepted the connection but did not answer in time; is it overloaded?"),
    (ProfileNotFound, "set AWS_PROFILE to a profile of your AWS config (`aws configure list-profiles`), or unset it"),
    (TokenRetrievalError, SSO_ADVICE),
    (SSOError, SSO_ADVICE),
)
"""What to do about botocore's other setup errors (no answer, no such profile, no SSO session)."""

INVOKE_GRANT = (
    "give the orchestrator's role the kit's OrchestratorPolicy (pipeskit.cdk.OrchestratorPolicy), or "
    "lambda:InvokeFunction on the function"
)


def error_code(error: ClientError) -> str:
    """AWS's error code of ``error`` (e.g. ``ResourceNotFoundException``); empty when it has none."""
    return str(error.response.get("Error", {}).get("Code", ""))


def client_location(client: Any) -> str:
    """``us-east-1 (endpoint http://localhost:4566)``: where a boto3 client sends its calls."""
    return f"{client.meta.region_name} (endpoint {client.meta.endpoint_url})"


def aws_error_message(error: ClientError | BotoCoreError, action: str) -> str:
    """What went wrong in an AWS call: what was being done and what AWS answered.

    Args:
        error: botocore's error.
        action: what was being done, e.g. ``invoking my-fn``.

    Returns:
        ``ACTION: AWS answered CODE: MESSAGE`` (with a hint about credentials when AWS refused
        them), or ``ACTION: ERROR`` for a call that got no answer, with what to do when the cause is
        known (no answer in time, no such profile, an expired SSO session).
    """
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code", "Error")
        message = details.get("Message", "") or str(error)
        hint = ""
        if code in _CREDENTIAL_CODES:
            hint = "; check the credentials in use (AWS_PROFILE, AWS_ACCESS_KEY_ID) and their permissions"
        return f"{action}: AWS answered {code}: {message}{hint}"
    advice = next((advice for kind, advice in _SETUP_ADVICE if isinstance(error, kind)), "")
    return f"{action}: {str(error).rstrip('.')}; {advice}" if advice else f"{action}: {error}"


def aws_error(
    error: ClientError | BotoCoreError,
    action: str,
    *,
    client: Any | None = None,
    function_name: str | None = None,
    qualifier: str | None = None,
    permission: str | None = None,
    nothing_done: str = "Nothing was invoked.",
) -> LambdaInvokeError | FunctionNotFoundError:
    """The kit's error for a failed AWS call: one line, what happened, the value at fault, what to do.

    Args:
        error: botocore's error (chain it: ``raise aws_error(...) from error``).
        action: what was being done, e.g. ``invoking my-fn:live``.
        client: the boto3 client of the call, to name its region and endpoint.
        function_name: the Lambda function concerned (a ``ResourceNotFoundException`` then reads
            as that function not being found).
        qualifier: its version or alias.
        permission: the IAM action the call needs, named when AWS refuses it (e.g.
            ``lambda:InvokeFunction``).
        nothing_done: what did not happen, said after what went wrong.

    Returns:
        `FunctionNotFoundError` (no such function, version or alias), `AwsAccessDeniedError`,
        `AwsCredentialsMissingError`, `AwsEndpointUnreachableError`, `AwsRegionMissingError`, or
        `LambdaInvokeError` for anything else (naming what AWS answered).
    """
    named = f"{function_name}:{qualifier}" if function_name and qualifier else function_name
    done = f" {nothing_done}" if nothing_done else ""
    where = client_location(client) if client is not None else ""
    at = f" in {where}" if where else ""
    if isinstance(error, ClientError):
        code = error_code(error)
        message = str(error.response.get("Error", {}).get("Message", "")) or code
        if code == NOT_FOUND and function_name:
            return FunctionNotFoundError(
                f"function {named} not found{at}: {message}. Check the name and qualifier, the region (the client's "
                "region_name, AWS_DEFAULT_REGION, AWS_PROFILE) and the endpoint (endpoint_url, "
                f"AWS_ENDPOINT_URL).{done}",
                function_name=function_name, qualifier=qualifier, where=where,
            )  # fmt: skip
        if code in ACCESS_DENIED_CODES:
            what = permission or "the call"
            grant = INVOKE_GRANT if permission == "lambda:InvokeFunction" else (
                f"grant {permission} to the orchestrator's role (the kit's OrchestratorPolicy does)"
                if permission else "grant the orchestrator's role the permission AWS names"
            )  # fmt: skip
            on = f" on {named}" if named else ""
            return AwsAccessDeniedError(
                f"{action}: AWS refused {what}{on}{at} to the credentials in use ({code}: {message}).{done} "
                f"To fix it, {grant}.",
                action=action, code=code, permission=permission or "", resource=named or "",
            )  # fmt: skip
        if code in UNRECOGNISED_CREDENTIAL_CODES:
            return AwsCredentialsMissingError(
                f"{action}: AWS did not accept the credentials in use{at} ({code}: {message}).{done} "
                f"To fix it, {CREDENTIALS_ADVICE}.",
                action=action, code=code,
            )  # fmt: skip
        return LambdaInvokeError(aws_error_message(error, action), action=action, code=code or None)
    if isinstance(error, BotoConnectionError):
        endpoint = client.meta.endpoint_url if client is not None else _endpoint_of(error)
        region = f" (region {client.meta.region_name})" if client is not None else ""
        return AwsEndpointUnreachableError(
            f"{action}: could not connect to the AWS endpoint {endpoint}{region}.{done} "
            f"To fix it, {ENDPOINT_ADVICE}.",
            action=action, endpoint_url=endpoint,
        )  # fmt: skip
    if isinstance(error, NoRegionError):
        return AwsRegionMissingError(f"{action}: no AWS region is set.{done} To fix it, {REGION_ADVICE}.",
                                     action=action)  # fmt: skip
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        found = "no AWS credentials were found" if isinstance(error, NoCredentialsError) else f"{error}"
        return AwsCredentialsMissingError(
            f"{action}{at}: {found}.{done} To fix it, {CREDENTIALS_ADVICE}.", action=action
        )
    return LambdaInvokeError(aws_error_message(error, f"{action}{at}"), action=action)


def _endpoint_of(error: BotoCoreError) -> str:
    """``scheme://host:port`` of the URL a connection error names (its request's path left out)."""
    url = urlsplit(str(error.kwargs.get("endpoint_url") or error.kwargs.get("proxy_url") or ""))
    return f"{url.scheme}://{url.netloc}" if url.netloc else url.geturl()
