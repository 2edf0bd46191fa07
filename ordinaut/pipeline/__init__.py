"""Pipelines: the declarative language of a task's payload and its deterministic interpreter.

``model`` (frozen values and the shape check) → ``validate`` (creation-time checks of meaning)
→ ``executor`` (runs steps through an injected ``call_tool``); ``template`` renders
``${...}`` JMESPath templates. Nothing here performs I/O or reads the clock.
"""
