"""A function whose code fails when Lambda imports it, before any handler can run: Lambda answers
``Runtime.ImportModuleError`` (deploy it with ``entrypoint=False``, its handler ``broken_import.handler``)."""

import a_module_this_function_does_not_ship  # noqa: F401


def handler(event, context):
    return {"never": "reached"}
