"""Lambda-side helpers of pipes-lambda-kit, shipped inside the pipes layer.

Import it from a handler as ``import pipeskit_lambda``; the layer puts it on ``sys.path``
(``/opt/python``) next to ``dagster_pipes`` and ``aws_lambda_powertools``.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
