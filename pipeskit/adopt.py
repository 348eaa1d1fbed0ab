"""``pipeskit adopt``: put an existing Lambda function behind the kit's entrypoint, or take it back out.

A function created outside the kit (console, boto3, SAM) whose handler calls ``open_dagster_pipes``
reports only on the first invocation of each warm environment (dagster#22094). Adopting it:

- attaches the pipes layer if it is missing (by ARN, or the ``PipesLayerArn`` output of a deployed
  kit stack);
- sets the handler to ``pipeskit_lambda.entrypoint.handler`` and moves the old one to
  ``PIPESKIT_HANDLER``;
- changes nothing else (memory, timeout, role, other variables and layers stay as they are).

``--undo`` reverses exactly that; the layer comes off only if adopting attached it (recorded in
``PIPESKIT_ADOPTED_LAYER``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeskit_lambda.protocol import ENTRYPOINT_HANDLER, HANDLER_ENV_VAR, LAYER_DESCRIPTION

from .errors import AdoptError, StackOutputsError
from .stack_outputs import OutputNames, read_stack_outputs

ADOPTED_LAYER_ENV_VAR = "PIPESKIT_ADOPTED_LAYER"
"""Records the layer ``pipeskit adopt`` attached, so ``--undo`` removes that one and no other."""
LAYER_OUTPUT = OutputNames.PIPES_LAYER_ARN
MAX_LAYERS = 5


@dataclass
class Plan:
    """What adopting (or undoing) changes on one function.

    Attributes:
        function_name: the function.
        changes: one human line per change.
        update: keyword arguments of ``UpdateFunctionConfiguration`` (empty: nothing to do).
    """

    function_name: str
    changes: list[str] = field(default_factory=list)
    update: dict[str, Any] = field(default_factory=dict)

    def describe(self, *, undo: bool, dry_run: bool) -> str:
        verb = "pipeskit adopt --undo" if undo else "pipeskit adopt"
        if not self.update:
            return f"{verb} {self.function_name}: nothing to change"
        lines = [f"{verb} {self.function_name}:", *(f"  {change}" for change in self.changes)]
        if dry_run:
            lines.append("(dry run: nothing was changed)")
        return "\n".join(lines)


def layer_from_stack(cloudformation: Any, stack_name: str) -> str:
    """The pipes layer version ARN a deployed kit stack reports as its ``PipesLayerArn`` output."""
    try:
        outputs = read_stack_outputs(cloudformation, stack_name)
    except StackOutputsError as error:
        raise AdoptError(f"{str(error).rstrip('.')}. Or pass the layer with --layer ARN instead.") from None
    if LAYER_OUTPUT not in outputs:
        raise AdoptError(
            f"stack {stack_name!r} has no {LAYER_OUTPUT} output (outputs: {sorted(outputs)}); is it a "
            "pipes-lambda-kit stack? Pass the layer with --layer ARN instead."
        )
    return outputs[LAYER_OUTPUT]


def _layer_name(arn: str) -> str:
    return arn.rsplit(":", 1)[0]  # arn:aws:lambda:region:account:layer:name[:version]


def plan_adoption(lambda_client: Any, function_name: str, layer_arn: str | None) -> Plan:
    """What `adopt` would change; nothing is changed.

    Raises:
        AdoptError: not a Python function, no layer to attach and none attached, or too many layers.
    """
    config = lambda_client.get_function_configuration(FunctionName=function_name)
    plan = Plan(config["FunctionName"])
    if config.get("Handler") == ENTRYPOINT_HANDLER:
        return plan
    if not str(config.get("Runtime", "")).startswith("python3"):
        raise AdoptError(
            f"{function_name} runs {config.get('Runtime') or 'a container image'}; the pipes layer and "
            "the kit's entrypoint are for Python runtimes."
        )
    layers = [layer["Arn"] for layer in config.get("Layers") or []]
    variables = dict((config.get("Environment") or {}).get("Variables") or {})
    if layer_arn is None and not _has_pipes_layer(lambda_client, layers):
        raise AdoptError(
            f"{function_name} has no pipes layer; pass --layer ARN (e.g. from `pipeskit layer` published "
            "with `aws lambda publish-layer-version`) or --stack NAME of a deployed pipes-lambda-kit stack."
        )
    if layer_arn is not None and _layer_name(layer_arn) not in {_layer_name(arn) for arn in layers}:
        if len(layers) >= MAX_LAYERS:
            raise AdoptError(f"{function_name} already has {len(layers)} layers, Lambda's maximum; remove one first.")
        layers.append(layer_arn)
        variables[ADOPTED_LAYER_ENV_VAR] = layer_arn
        plan.changes.append(f"Layers: + {layer_arn}")
        plan.update["Layers"] = layers
    plan.changes.insert(0, f"Handler: {config['Handler']} -> {ENTRYPOINT_HANDLER}")
    plan.changes.append(f"Environment: + {HANDLER_ENV_VAR}={config['Handler']}")
    variables[HANDLER_ENV_VAR] = config["Handler"]
    plan.update.update(Handler=ENTRYPOINT_HANDLER, Environment={"Variables": variables})
    return plan


def plan_undo(lambda_client: Any, function_name: str) -> Plan:
    """What ``adopt --undo`` would change; nothing is changed.

    Raises:
        AdoptError: the function is behind the entrypoint without ``PIPESKIT_HANDLER`` to go back to.
    """
    config = lambda_client.get_function_configuration(FunctionName=function_name)
    plan = Plan(config["FunctionName"])
    if config.get("Handler") != ENTRYPOINT_HANDLER:
        return plan
    variables = dict((config.get("Environment") or {}).get("Variables") or {})
    original = variables.pop(HANDLER_ENV_VAR, None)
    if not original:
        raise AdoptError(f"{function_name} runs the kit's entrypoint but has no {HANDLER_ENV_VAR} to go back to.")
    plan.changes.append(f"Handler: {ENTRYPOINT_HANDLER} -> {original}")
    plan.changes.append(f"Environment: - {HANDLER_ENV_VAR}")
    added = variables.pop(ADOPTED_LAYER_ENV_VAR, None)
    plan.update.update(Handler=original, Environment={"Variables": variables})
    if added:
        layers = [layer["Arn"] for layer in config.get("Layers") or []]
        plan.update["Layers"] = [arn for arn in layers if arn != added]
        plan.changes.append(f"Layers: - {added}")
    return plan


def apply(lambda_client: Any, plan: Plan) -> None:
    """Make ``plan``'s change and wait until Lambda has applied it."""
    if not plan.update:
        return
    lambda_client.update_function_configuration(FunctionName=plan.function_name, **plan.update)
    lambda_client.get_waiter("function_updated_v2").wait(
        FunctionName=plan.function_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )


def _has_pipes_layer(lambda_client: Any, layer_arns: list[str]) -> bool:
    """Whether an attached layer is a pipes layer (published with the kit's description)."""
    for arn in layer_arns:
        try:
            description = lambda_client.get_layer_version_by_arn(Arn=arn).get("Description", "")
        except lambda_client.exceptions.ClientError:
            continue
        if description == LAYER_DESCRIPTION:
            return True
    return False
