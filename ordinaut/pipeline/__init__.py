"""Pipelines: the declarative language of a task's payload and its deterministic interpreter.

``model`` (the language as frozen pydantic models) → ``parse`` (a payload to a Pipeline:
shape and limits, errors naming the step and field) → ``validate`` (creation-time checks of
meaning) → ``executor`` (runs steps through an injected ``call_tool``); ``schema`` is the
language as JSON Schema for agents; ``template`` renders ``${...}`` JMESPath templates.
Nothing here performs I/O or reads the clock.
"""
