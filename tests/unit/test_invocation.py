"""The invocation record: envelope unwrapping, errors, function names."""

import json

from pipeskit.invocation import LambdaInvocation, function_base_name

RID = "8f5c1f9e-1111-4c2b-9d55-0123456789ab"


def test_function_names_are_reduced_to_the_base_name() -> None:
    assert function_base_name("fn") == "fn"
    assert function_base_name("fn:live") == "fn"
    assert function_base_name("arn:aws:lambda:us-east-1:123456789012:function:fn:3") == "fn"


def test_envelope_is_unwrapped_and_errors_are_not_envelopes() -> None:
    envelope = {"__pipeskit__": 1, "result": {"rows": 3}, "messages": []}
    ok = LambdaInvocation(function_name="fn", request_id=RID, payload=json.dumps(envelope).encode())
    assert ok.return_value == {"rows": 3}
    plain = LambdaInvocation(function_name="fn", request_id=RID, payload=b'{"rows": 3}')
    assert plain.envelope is None and plain.return_value == {"rows": 3}
    failed = LambdaInvocation(function_name="fn", request_id=RID, payload=json.dumps(envelope).encode(),
                              function_error="Unhandled")
    assert failed.envelope is None


def test_error_details_only_for_failed_invocations() -> None:
    error = {"errorType": "ValueError", "errorMessage": "bad", "stackTrace": ["x"]}
    failed = LambdaInvocation(function_name="fn", request_id=RID, payload=json.dumps(error).encode(),
                              function_error="Unhandled")
    assert failed.error_details["errorType"] == "ValueError"
    ok = LambdaInvocation(function_name="fn", request_id=RID, payload=json.dumps(error).encode())
    assert ok.error_details == {}


def test_only_the_runtimes_init_errors_say_the_handler_never_ran() -> None:
    def failed(error_type: str, function_error: str | None = "Unhandled") -> LambdaInvocation:
        document = {"errorType": error_type, "errorMessage": "m", "stackTrace": []}
        return LambdaInvocation(function_name="fn", request_id=RID, payload=json.dumps(document).encode(),
                                function_error=function_error)  # fmt: skip

    for error_type in ("Runtime.ImportModuleError", "Runtime.UserCodeSyntaxError", "Runtime.HandlerNotFound"):
        assert failed(error_type).handler_never_ran, error_type
    for error_type in ("Runtime.ExitError", "Runtime.OutOfMemory", "Runtime.MarshalError", "Sandbox.Timedout",
                       "ValueError"):  # fmt: skip
        assert not failed(error_type).handler_never_ran, "the handler ran: its messages are read back"
    assert not failed("Runtime.ImportModuleError", function_error=None).handler_never_ran, "a returned value"
