"""Policy: the person's rules as pure decisions (rule, usage and time in; decision out).

Nothing here does I/O or reads the clock; dispatch, the executor and the service call these
functions with what they read and act on the answer. :mod:`.scopes` decides which tool
scopes a pipeline needs that an agent lacks.
"""
