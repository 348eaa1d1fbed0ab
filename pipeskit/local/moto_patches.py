"""Fixes applied to moto at server start so it behaves like AWS where the kit needs it.

Each patch says why it exists. Patches are applied once per process
(:func:`apply`); the hook that routes moto's internal Lambda invocations to the local
runtime is bound by :func:`bind_event_invoker`.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from moto.awslambda import models as lambda_models
from moto.sqs import models as sqs_models

logger = logging.getLogger(__name__)

_applied = False
_lock = threading.Lock()
_event_invokers: list[Callable[[str, bytes], None]] = []
"""The running local AWSs' invokers, the newest last: moto's state is per process, so its deliveries go to
the newest one still running, and stopping one leaves the others theirs."""

#: Function properties moto's CloudFormation model drops but Lambda honours.
_EXTRA_FUNCTION_PROPERTIES = ("DeadLetterConfig", "LoggingConfig", "DurableConfig")


def bind_event_invoker(invoker: Callable[[str, bytes], None]) -> None:
    """Route moto-internal Lambda deliveries (SNS, S3 notifications, EventBridge) to ``invoker`` until it is
    unbound (:func:`unbind_event_invoker`).

    Args:
        invoker: ``invoker(function_arn, payload)`` queuing an ``Event`` invocation.
    """
    with _lock:
        _event_invokers.append(invoker)


def unbind_event_invoker(invoker: Callable[[str, bytes], None]) -> None:
    """Stop routing deliveries to ``invoker``; the local AWS started before it, if still running, gets them."""
    with _lock:
        if invoker in _event_invokers:
            _event_invokers.remove(invoker)


def _layer_arns(value: Any) -> list[str]:
    """Layer references as ARNs (CloudFormation may hand over LayerVersion objects)."""
    arns = []
    for item in value or []:
        arns.append(item.arn if isinstance(item, lambda_models.LayerVersion) else str(item))
    return arns


def _apply_extra_config(fn: Any, properties: dict[str, Any]) -> None:
    if "DeadLetterConfig" in properties:
        fn.dead_letter_config = properties["DeadLetterConfig"] or None
    if "LoggingConfig" in properties:
        fn.logging_config = properties["LoggingConfig"] or None
    if "DurableConfig" in properties:
        fn.durable_config = _durable_config(properties["DurableConfig"])


#: Lambda's defaults for the fields of a ``DurableConfig`` left out.
DURABLE_DEFAULTS = {"ExecutionTimeout": 86400, "RetentionPeriodInDays": 14}


def _durable_config(value: Any) -> dict[str, Any] | None:
    """A function's ``DurableConfig`` as Lambda keeps it: numbers as numbers, defaults filled in."""
    if not value:
        return None
    config = {**DURABLE_DEFAULTS, **{key: item for key, item in dict(value).items() if item is not None}}
    for key in DURABLE_DEFAULTS:
        config[key] = int(config[key])
    return config


def apply() -> None:
    """Apply every patch (idempotent)."""
    global _applied
    with _lock:
        if _applied:
            return
        _patch_cloudformation_layers()
        _patch_layer_version_ref()
        _patch_function_extra_config()
        _patch_event_invoke_config_put()
        _patch_event_invoke_config_cloudformation()
        _patch_layer_version_by_arn()
        _patch_sqs_event_source_delivery()
        _patch_internal_invoke()
        _patch_change_sets()
        _patch_stack_parameters()
        _patch_layer_version_replacement()
        _patch_dependents_of_replaced_resources()
        _patch_log_event_pages()
        _patch_event_source_mapping_validation()
        _patch_log_group_arn_attribute()
        _patch_sqs_retention_check()
        _patch_sqs_send_attributes()
        _patch_service_dispatch()
        _patch_sqs_delete()
        _applied = True


def _patch_cloudformation_layers() -> None:
    # Why: moto's LambdaFunction.create_from_cloudformation_json builds the function
    # spec from a fixed list of properties that omits Layers (and DeadLetterConfig,
    # LoggingConfig), so a CloudFormation/CDK-deployed function runs without its
    # layers. Real CloudFormation attaches them; we attach them after creation. The
    # update path only handles Layers when present, so a removed Layers property
    # would leave stale layers attached: set them from the new template every time.
    fn_cls = lambda_models.LambdaFunction
    original_create = fn_cls.create_from_cloudformation_json.__func__
    original_update = fn_cls.update_from_cloudformation_json.__func__

    @functools.wraps(original_create)
    def create(
        cls: Any, resource_name: str, cloudformation_json: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        properties = cloudformation_json.get("Properties", {})
        fn = original_create(cls, resource_name, cloudformation_json, *args, **kwargs)
        if properties.get("Layers"):
            fn.layers = fn._get_layers_data(_layer_arns(properties["Layers"]))
        _apply_extra_config(fn, properties)
        return fn

    @functools.wraps(original_update)
    def update(
        cls: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        properties = dict(cloudformation_json.get("Properties", {}))
        layers = _layer_arns(properties.pop("Layers", None))
        cloudformation_json = dict(cloudformation_json, Properties=properties)
        fn = original_update(
            cls, original_resource, new_resource_name, cloudformation_json, *args, **kwargs
        )
        fn.layers = fn._get_layers_data(layers)
        fn.dead_letter_config = properties.get("DeadLetterConfig") or None
        fn.logging_config = properties.get("LoggingConfig") or None
        fn.durable_config = _durable_config(properties.get("DurableConfig"))
        return fn

    fn_cls.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment]
    fn_cls.update_from_cloudformation_json = classmethod(update)  # type: ignore[method-assign,assignment]


def _patch_log_group_arn_attribute() -> None:
    # Why: CloudFormation's GetAtt Arn of an AWS::Logs::LogGroup is `arn:…:log-group:NAME:*` (it covers
    # the group's streams, so a policy granting it allows GetLogEvents on them); moto answers the bare
    # group ARN, which the IAM-enforcing local AWS would then refuse for every stream read.
    from moto.logs.models import LogGroup

    group_cls: Any = LogGroup
    original = group_cls.get_cfn_attribute

    def get_cfn_attribute(self: Any, attribute_name: str) -> Any:
        value = original(self, attribute_name)
        return f"{value}:*" if attribute_name == "Arn" and not str(value).endswith(":*") else value

    group_cls.get_cfn_attribute = get_cfn_attribute


def _patch_layer_version_ref() -> None:
    # Why: CloudFormation's Ref of an AWS::Lambda::LayerVersion is its ARN. moto's
    # LayerVersion has no physical_resource_id, so Ref yields the Python object and
    # Outputs/Layers references break. Expose the ARN.
    layer_cls: Any = lambda_models.LayerVersion
    layer_cls.physical_resource_id = property(lambda self: self.arn)


def _patch_function_extra_config() -> None:
    # Why: moto ignores DeadLetterConfig, LoggingConfig and DurableConfig on CreateFunction /
    # UpdateFunctionConfiguration and never returns them. The local runtime needs
    # them (DLQ for failed async events, custom log group, durable executions) and clients
    # expect to read them back from GetFunctionConfiguration.
    fn_cls = lambda_models.LambdaFunction
    original_init = fn_cls.__init__
    original_update = fn_cls.update_configuration
    original_get = fn_cls.get_configuration

    @functools.wraps(original_init)
    def init(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        original_init(self, account_id, spec, *args, **kwargs)
        self.dead_letter_config = spec.get("DeadLetterConfig") or None
        self.logging_config = spec.get("LoggingConfig") or None
        self.durable_config = _durable_config(spec.get("DurableConfig"))

    @functools.wraps(original_update)
    def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        _apply_extra_config(self, config_updates)
        return original_update(self, config_updates)

    @functools.wraps(original_get)
    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        config = original_get(self, *args, **kwargs)
        dead_letter = getattr(self, "dead_letter_config", None)
        if dead_letter and dead_letter.get("TargetArn"):
            config["DeadLetterConfig"] = dead_letter
        logging_config = getattr(self, "logging_config", None)
        config["LoggingConfig"] = {
            "LogFormat": "Text",
            "LogGroup": f"/aws/lambda/{self.function_name}",
            **(logging_config or {}),
        }
        durable_config = getattr(self, "durable_config", None)
        if durable_config:
            config["DurableConfig"] = durable_config
        return config

    fn_cls.__init__ = init  # type: ignore[method-assign]
    fn_cls.update_configuration = update_configuration  # type: ignore[method-assign]
    fn_cls.get_configuration = get_configuration  # type: ignore[method-assign]


_EVENT_INVOKE_FIELDS = ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")


def _put_event_invoke_config(fn: Any, config: dict[str, Any]) -> dict[str, Any]:
    """Make ``config`` the function version's one event-invoke configuration; its API answer."""
    config = {key: config[key] for key in _EVENT_INVOKE_FIELDS if config.get(key) is not None}
    event_config = lambda_models.EventInvokeConfig(fn.function_arn, fn.last_modified, config)
    fn.event_invoke_config = [event_config]
    return event_config.response()  # type: ignore[no-any-return]


def _patch_event_invoke_config_put() -> None:
    # Why: PutFunctionEventInvokeConfig replaces a function's configuration in AWS;
    # moto appends, and its Get returns the first (stale) entry. UpdateFunctionEventInvokeConfig
    # changes only the fields it is given; moto replaced the whole configuration.
    backend_cls = lambda_models.LambdaBackend

    def put_function_event_invoke_config(
        self: Any, function_name: str, config: dict[str, Any]
    ) -> dict[str, Any]:
        return _put_event_invoke_config(self.get_function(function_name), config)

    def update_function_event_invoke_config(
        self: Any, function_name: str, config: dict[str, Any]
    ) -> dict[str, Any]:
        fn = self.get_function(function_name)
        current = dict(fn.event_invoke_config[-1].config) if fn.event_invoke_config else {}
        current.update({key: value for key, value in config.items() if key in _EVENT_INVOKE_FIELDS})
        return _put_event_invoke_config(fn, current)

    backend_cls.put_function_event_invoke_config = (  # type: ignore[method-assign]
        put_function_event_invoke_config
    )
    backend_cls.update_function_event_invoke_config = (  # type: ignore[method-assign]
        update_function_event_invoke_config
    )


def _patch_event_invoke_config_cloudformation() -> None:
    # Why: moto's CloudFormation has no AWS::Lambda::EventInvokeConfig: it skipped the resource with
    # a warning in the server's log, and the async retry settings and destinations a stack declares
    # (`Function.configure_async_invoke`, `on_failure=` in the CDK) never applied. This model sets
    # the configuration of the function version it names, as CloudFormation does.
    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel

    def function_of(properties: dict[str, Any], account_id: str, region_name: str) -> Any:
        backend = lambda_models.lambda_backends[account_id][region_name]
        qualifier = properties.get("Qualifier") or "$LATEST"
        return backend._lambdas.get_function_by_name_or_arn_with_qualifier(
            properties["FunctionName"], None if qualifier == "$LATEST" else qualifier
        )

    class LambdaEventInvokeConfig(CloudFormationModel):
        """``AWS::Lambda::EventInvokeConfig``: a function version's asynchronous invocation settings."""

        def __init__(self, fn: Any, qualifier: str) -> None:
            self.function_name = fn.function_name
            self.qualifier = qualifier
            self.account_id = fn.account_id
            self.region = fn.region

        @property
        def physical_resource_id(self) -> str:
            return f"{self.function_name}:{self.qualifier}"

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Lambda::EventInvokeConfig"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return False

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
            **kwargs: Any,
        ) -> LambdaEventInvokeConfig:
            properties = cloudformation_json["Properties"]
            fn = function_of(properties, account_id, region_name)
            _put_event_invoke_config(fn, properties)
            return cls(fn, properties.get("Qualifier") or "$LATEST")

        @classmethod
        def update_from_cloudformation_json(  # type: ignore[override]
            cls, original_resource: Any, new_resource_name: str, cloudformation_json: dict[str, Any],
            account_id: str, region_name: str,
        ) -> LambdaEventInvokeConfig:
            original_resource.delete(account_id, region_name)
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

        @classmethod
        def delete_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
        ) -> None:
            try:
                function_of(cloudformation_json["Properties"], account_id, region_name).event_invoke_config = []
            except Exception:  # the function went first: nothing is left to configure
                pass

        def delete(self, account_id: str, region_name: str) -> None:
            properties = {"FunctionName": self.function_name, "Qualifier": self.qualifier}
            self.delete_from_cloudformation_json(self.physical_resource_id, {"Properties": properties}, account_id,
                                                 region_name)  # fmt: skip

        def is_created(self) -> bool:
            return True

    # moto lists its CloudFormation models once (CloudFormationModel's subclasses, cached): list again.
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


def _patch_layer_version_by_arn() -> None:
    # Why: moto has no GetLayerVersionByArn (GET /layers?find=LayerVersion&Arn=...): it answered an
    # HTML error page, and `pipeskit adopt` took that for "no pipes layer" on a function that has it.
    from moto.awslambda.exceptions import UnknownLayerVersionException
    from moto.awslambda.responses import LambdaResponse

    def get_layer_version_by_arn(self: Any) -> str:
        arn = self._get_param("Arn") or ""
        layer = self.backend.layers_versions_by_arn(arn)
        if layer is None:
            raise UnknownLayerVersionException([arn])
        return json.dumps(layer.get_layer_version())

    response_cls: Any = LambdaResponse
    response_cls.get_layer_version_by_arn = get_layer_version_by_arn


class _NoDelivery(dict):  # type: ignore[type-arg]
    """A mapping that forgets what is stored in it."""

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


def _patch_sqs_event_source_delivery() -> None:
    # Why: moto delivers to SQS event source mappings itself, synchronously inside
    # SendMessage, by running the function in Docker (unavailable here) and ignoring
    # batching, concurrency, partial failures and disabled/deleted mappings. The
    # local event source poller (pipeskit.local.event_sources) takes over: queues never
    # remember mappings, so moto's path never fires.
    def _get(self: Any) -> dict[str, Any]:
        return _NoDelivery()

    def _set(self: Any, value: Any) -> None:
        pass

    sqs_models.Queue.lambda_event_source_mappings = property(_get, _set)  # type: ignore[assignment]


def _patch_internal_invoke() -> None:
    # Why: moto's other services (SNS subscriptions, S3 notifications, EventBridge)
    # deliver to Lambda through LambdaFunction.invoke, which needs Docker. Those are
    # asynchronous invocations in AWS: queue them on the local runtime instead.
    fn_cls = lambda_models.LambdaFunction

    def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> bytes:
        with _lock:
            invoker = _event_invokers[-1] if _event_invokers else None
        if invoker is None:
            logger.warning("no local runtime bound: dropping delivery to %s", self.function_name)
            return b""
        if isinstance(body, (bytes, bytearray)):
            payload = bytes(body)
        else:
            payload = (body if isinstance(body, str) else json.dumps(body)).encode()
        invoker(self.function_arn, payload)
        return b""

    fn_cls.invoke = invoke  # type: ignore[method-assign]


def _patch_change_sets() -> None:
    """Change sets as CloudFormation keeps them: per stack, gone once executed; ``cdk deploy`` twice works.

    moto keeps every change set in one list for the region and finds one by name alone, so the
    second ``cdk deploy`` (every stack's change set is called ``cdk-deploy-change-set``) found the
    bootstrap stack's or an executed one. CloudFormation:

    - names a change set within its stack (``StackName`` + ``ChangeSetName``, or the change set's ARN);
    - answers ``ChangeSetNotFound`` for one that does not exist — ``cdk deploy`` deletes the old
      change set and waits for exactly that error; moto answered ``ValidationError``;
    - accepts ``DeleteChangeSet`` of a missing change set on an existing stack (moto failed with an
      ``UnboundLocalError``, answered as an HTML error page the CLI cannot parse);
    - removes all of a stack's change sets once one is executed, and refuses to execute one that is
      not ``AVAILABLE`` (moto re-applied a stale one);
    - after executing, the stack has the change set's template, parameters, description and Outputs
      (moto kept the old parameters and the Outputs of the template the stack was created with: none
      for a ``CREATE`` change set, so ``cdk deploy --outputs-file`` wrote ``{}``);
    - records a resource that fails to deploy as a failed stack with the reason (moto raised, and the
      CLI saw an HTML error page).

    A deleted stack's change sets go with it, so ``cdk destroy`` then ``cdk deploy`` starts afresh.
    """
    from moto.cloudformation.exceptions import CloudFormationError, ValidationError
    from moto.cloudformation.models import CloudFormationBackend
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import ActionResult, EmptyResult

    class ChangeSetNotFound(CloudFormationError):
        code = "ChangeSetNotFound"

        def __init__(self, name: str) -> None:
            super().__init__(f"ChangeSet [{name}] does not exist")

    class InvalidChangeSetStatus(CloudFormationError):
        code = "InvalidChangeSetStatus"

    def find(self: Any, change_set_name: str, stack_name: str | None) -> Any:
        if change_set_name in self.change_sets:  # the change set's ARN
            return self.change_sets[change_set_name]
        if change_set_name.startswith("arn:"):
            raise ChangeSetNotFound(change_set_name)
        if not stack_name:
            raise ValidationError(
                message=f"StackName must be specified if ChangeSetName ({change_set_name}) is not an ARN."
            )
        stack = self.get_stack(stack_name)
        for change_set in self.change_sets.values():
            if change_set.change_set_name == change_set_name and change_set.stack_id == stack.stack_id:
                return change_set
        raise ChangeSetNotFound(change_set_name)

    def describe_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> Any:
        return find(self, change_set_name, stack_name)

    def delete_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        try:
            change_set = find(self, change_set_name, stack_name)
        except ChangeSetNotFound:
            return  # nothing to delete on an existing stack: CloudFormation answers success
        self.change_sets.pop(change_set.change_set_id, None)

    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = find(self, change_set_name, stack_name)
        if change_set.execution_status != "AVAILABLE":
            raise InvalidChangeSetStatus(
                f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current status of "
                f"[{change_set.status}]"
            )
        stack = self.stacks[change_set.stack_id]
        kind = change_set.change_set_type
        stack._add_stack_event(f"{kind}_IN_PROGRESS", resource_status_reason="User Initiated")
        try:
            change_set.apply()
        except Exception as error:  # the stack fails, with the reason, as CloudFormation reports it
            kind_of_error = getattr(error, "error_type", None) or type(error).__name__
            reason = f"{kind_of_error}: {getattr(error, 'message', None) or error}"
            logger.warning("change set %s on stack %s failed: %s", change_set_name, stack.name, reason)
            stack._add_stack_event(f"{kind}_FAILED", resource_status_reason=reason)
            stack.status = f"{kind}_FAILED"
            change_set.execution_status = "EXECUTE_FAILED"
            return
        stack.template = change_set.template
        stack._parse_template()
        stack.description = stack.template_dict.get("Description")
        stack.parameters = dict(change_set.parameters or {})
        stack.output_map = stack._create_output_map()
        stack.status = f"{kind}_COMPLETE"
        stack._add_stack_event(stack.status)
        for change_set_id in [i for i, c in self.change_sets.items() if c.stack_id == stack.stack_id]:
            del self.change_sets[change_set_id]

    original_delete_stack = CloudFormationBackend.delete_stack

    def delete_stack(self: Any, name_or_stack_id: str) -> None:
        ids = {s.stack_id for s in self.stacks.values() if name_or_stack_id in (s.name, s.stack_id)}
        original_delete_stack(self, name_or_stack_id)
        for change_set_id in [i for i, c in self.change_sets.items() if c.stack_id in ids]:
            del self.change_sets[change_set_id]

    def describe_change_set_response(self: Any) -> ActionResult:
        name, stack = self._get_param("ChangeSetName"), self._get_param("StackName")
        return ActionResult(describe_change_set(self.cloudformation_backend, name, stack))

    def delete_change_set_response(self: Any) -> ActionResult:
        backend = self.cloudformation_backend
        delete_change_set(backend, self._get_param("ChangeSetName"), self._get_param("StackName"))
        return EmptyResult()

    backend_cls: Any = CloudFormationBackend
    backend_cls.describe_change_set = describe_change_set
    backend_cls.delete_change_set = delete_change_set
    backend_cls.execute_change_set = execute_change_set
    backend_cls.delete_stack = delete_stack
    response_cls: Any = CloudFormationResponse
    response_cls.describe_change_set = describe_change_set_response
    response_cls.delete_change_set = delete_change_set_response


def _patch_stack_parameters() -> None:
    # Why: a parameter passed as UsePreviousValue keeps the value the stack was last deployed with —
    # the value given, or the template's Default when none was (CDK's BootstrapVersion, an SSM
    # parameter name). moto looked it up among the values given only (`cdk deploy --method=direct`:
    # KeyError 'BootstrapVersion', an HTML error page) or took the SSM-resolved value, which it then
    # resolved again as if it were a parameter name (the change-set method).
    from moto.cloudformation.models import CloudFormationBackend, Stack

    def stack_parameters(self: Any) -> dict[str, Any]:
        declared = (getattr(self, "template_dict", None) or {}).get("Parameters") or {}
        previous = {name: slot["Default"] for name, slot in declared.items() if "Default" in slot}
        previous.update(self.resource_map.input_parameters or {})
        return previous

    def _resolve_update_parameters(self: Any, instance: Any, incoming_params: list[dict[str, Any]]) -> dict[str, Any]:
        if not isinstance(instance, Stack):
            return original(self, instance, incoming_params)
        previous = instance.stack_parameters
        resolved = {}
        for parameter in incoming_params:
            key = parameter["ParameterKey"]
            if parameter.get("UsePreviousValue"):
                if key not in previous:
                    raise ValidationError(
                        message=f"Invalid input for parameter key {key}. Cannot specify usePreviousValue as true "
                        "for a parameter the stack did not have"
                    )
                resolved[key] = previous[key]
            elif "ParameterValue" in parameter:
                resolved[key] = parameter["ParameterValue"]
        return resolved

    from moto.cloudformation.exceptions import ValidationError

    original = CloudFormationBackend._resolve_update_parameters
    stack_cls: Any = Stack
    stack_cls.stack_parameters = property(stack_parameters)
    backend_cls: Any = CloudFormationBackend
    backend_cls._resolve_update_parameters = _resolve_update_parameters


def _patch_layer_version_replacement() -> None:
    # Why: an AWS::Lambda::LayerVersion cannot change: CloudFormation publishes a new version when
    # its properties change (a new layer zip). moto has no update for it and recorded the resource as
    # None, so every Ref to the layer broke on the next deploy. Publish the new version; the old one
    # stays, as CDK's layers ask (UpdateReplacePolicy Retain).
    layer_cls: Any = lambda_models.LayerVersion

    def update_from_cloudformation_json(
        cls: Any, original_resource: Any, new_resource_name: str, cloudformation_json: dict[str, Any],
        account_id: str, region_name: str,
    ) -> Any:
        name = getattr(original_resource, "name", None) or new_resource_name
        return cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)

    layer_cls.update_from_cloudformation_json = classmethod(update_from_cloudformation_json)


def _references(value: Any) -> set[str]:
    """Logical ids a template fragment refers to (``Ref``, ``Fn::GetAtt``, ``${Name}`` in ``Fn::Sub``)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) and inner else str(inner).split(".", 1)[0]
                found.add(str(target))
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) and inner else inner
                if isinstance(text, str):
                    found.update(part.split("}", 1)[0].split(".", 1)[0] for part in text.split("${")[1:])
                found |= _references(inner)
            else:
                found |= _references(inner)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def _physical_id(resource: Any) -> Any:
    return getattr(resource, "physical_resource_id", resource)


def _patch_dependents_of_replaced_resources() -> None:
    # Why: when an update replaces a resource (a new layer version, a renamed queue), CloudFormation
    # updates every resource that refers to it: their resolved properties changed. moto updates only
    # resources whose template text changed, so a function kept the old layer version after its layer
    # was rebuilt. After moto's update, resources whose text did not change but which refer to a
    # resource whose physical id changed are updated too, until none is left.
    from moto.cloudformation import parsing

    original = parsing.ResourceMap.update

    @functools.wraps(original)
    def update(self: Any, template: dict[str, Any], parameters: dict[str, Any] | None = None) -> None:
        old_json = dict(self._resource_json_map)
        before = {name: _physical_id(self._parsed_resources.get(name)) for name in old_json}
        original(self, template, parameters)
        new_json = template.get("Resources") or {}
        pending = {name for name in new_json if name in before
                   and _physical_id(self._parsed_resources.get(name)) != before[name]}  # fmt: skip
        updated: set[str] = set()
        while pending:
            dependents = [
                name for name, resource_json in new_json.items()
                if name not in updated and old_json.get(name) == resource_json and _references(resource_json) & pending
            ]  # fmt: skip
            pending = set()
            for name in dependents:
                updated.add(name)
                previous = self._parsed_resources.get(name)
                changed = parsing.parse_and_update_resource(
                    name, new_json[name], self, account_id=self._account_id, region_name=self._region_name
                )
                if changed is not None:
                    self._parsed_resources[name] = changed
                    if _physical_id(changed) != _physical_id(previous):
                        pending.add(name)

    parsing.ResourceMap.update = update  # type: ignore[method-assign]


LOG_PAGE_BYTES = 1024 * 1024
"""A ``GetLogEvents`` page holds at most 1 MB: the messages plus 26 bytes per event."""


def _patch_log_event_pages() -> None:
    # Why: moto cuts a GetLogEvents page at 10,000 events only; CloudWatch also cuts it at 1 MB,
    # and a reader that pages correctly must see that happen locally.
    from moto.logs.models import LogStream

    original = LogStream.get_log_events

    @functools.wraps(original)
    def get_log_events(self: Any, start_time: Any, end_time: Any, limit: Any, next_token: Any,
                       start_from_head: Any) -> Any:
        events, backward, forward = original(self, start_time, end_time, limit, next_token, start_from_head)
        sizes = [len(str(event.get("message", "")).encode("utf-8")) + 26 for event in events]
        if sum(sizes) <= LOG_PAGE_BYTES or not backward or not forward:
            return events, backward, forward
        start, end = int(backward[2:]), int(forward[2:])
        reading_forward = (next_token or "").startswith("f") or (next_token is None and start_from_head)
        order = sizes if reading_forward else list(reversed(sizes))
        kept, total = 0, 0
        for size in order:
            if kept and total + size > LOG_PAGE_BYTES:
                break
            total += size
            kept += 1
        if reading_forward:
            events, end = events[:kept], start + kept - 1
        else:
            events, start = events[len(events) - kept :], end - kept + 1
        return events, f"b/{start:056d}", f"f/{end:056d}"

    LogStream.get_log_events = get_log_events


def _patch_sqs_retention_check() -> None:
    # Why: moto checks each received message's retention by computing all of its queue's attributes,
    # ApproximateNumberOfMessages* included, which walk every message: a receive cost grew with the
    # square of the queue's depth (a 10,000-item fan-out spent minutes there). The retention period
    # is one attribute of the queue.
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_s = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention_s + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period


def _patch_sqs_send_attributes() -> None:
    # Why: moto's SendMessage reads its queue's ContentBasedDeduplication through all of the queue's
    # attributes, whose ApproximateNumberOfMessages* walk every message: sending grew with the queue's
    # depth (a SendMessageBatch took 0.4 s behind 1,000 messages). A standard queue has no such
    # attribute, so while it is sent to, its attributes are read as none.
    from moto.sqs.models import Queue, SQSBackend

    sending = threading.local()
    all_attributes = Queue.attributes.fget

    def attributes(self: Any) -> dict[str, Any]:
        if getattr(sending, "on", False) and not self.fifo_queue:
            return {}
        return all_attributes(self)  # type: ignore[no-any-return]

    original = SQSBackend.send_message

    @functools.wraps(original)
    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        sending.on = True
        try:
            return original(self, *args, **kwargs)
        finally:
            sending.on = False

    Queue.attributes = property(attributes)  # type: ignore[method-assign,assignment]
    SQSBackend.send_message = send_message


def _patch_service_dispatch() -> None:
    # Why: moto's server finds each request's service by listing its own package directory and
    # stat-ing every entry, on every request — a fifth of the local AWS's time under a fan-out. The
    # package does not change while it runs.
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def _patch_sqs_delete() -> None:
    # Why: moto deletes a message by walking the whole queue twice (is the receipt handle known? then
    # rebuild the list without it): draining a queue of N messages cost N² steps, a minute and more of
    # the local AWS's time for a 10,000-item fan-out. The message with the handle is found once, and
    # the walk stops there (received messages are the oldest, near the front).
    from moto.sqs.exceptions import ReceiptHandleIsInvalid
    from moto.sqs.models import Queue

    def delete_message(self: Any, receipt_handle: str) -> None:
        if receipt_handle in self.deleted_messages:
            return  # already deleted: gracefully handled, as moto does
        found = next((i for i, m in enumerate(self._messages) if m.had_receipt_handle(receipt_handle)), None)
        if found is None:
            raise ReceiptHandleIsInvalid()
        message = self._messages.pop(found)
        self.pending_messages.discard(message)
        self.deleted_messages.update(message.all_receipt_handles)

    Queue.delete_message = delete_message


def _patch_event_source_mapping_validation() -> None:
    # Why: Lambda refuses an SQS event source mapping whose function may run longer than the
    # queue's visibility timeout (a message would become visible to a second consumer while the
    # first still works on it); moto accepts it.
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.awslambda.models import LambdaBackend
    from moto.sqs.models import sqs_backends

    original = LambdaBackend.create_event_source_mapping

    @functools.wraps(original)
    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        arn = str(spec.get("EventSourceArn", ""))
        if arn.startswith("arn:aws:sqs:") and spec.get("FunctionName"):
            function = self._lambdas.get_function_by_name_or_arn_with_qualifier(spec["FunctionName"])
            queues = sqs_backends[self.account_id][self.region_name].queues.values()
            queue = next((q for q in queues if q.queue_arn == arn), None)
            timeout = int(function.timeout or 3)
            if queue is not None and int(queue.visibility_timeout) < timeout:
                raise InvalidParameterValueException(
                    f"Queue visibility timeout: {int(queue.visibility_timeout)} seconds is less than Function "
                    f"timeout: {timeout} seconds"
                )
        return original(self, spec)

    LambdaBackend.create_event_source_mapping = create_event_source_mapping
