"""The reference deployment's Dagster code location: ``dagster dev`` loads ``orchestration.definitions``.

Built with the library (``from pipeskit import PipesLambdaClient``); copy and edit it.
"""
