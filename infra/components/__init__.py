"""Constructs by concern; `infra.stack.PipesKitStack` composes them."""

from .orchestrator_policy import OrchestratorPolicy
from .pipes_function import PipesFunction
from .pipes_layer import PipesLayer
from .session_buckets import SessionBuckets
from .work_queue import WorkQueue

__all__ = ["OrchestratorPolicy", "PipesFunction", "PipesLayer", "SessionBuckets", "WorkQueue"]
