"""The ``pipeskit`` command line of pipes-lambda-kit."""
