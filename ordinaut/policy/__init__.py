"""Policy: the person's rules as pure decisions (rule, usage and time in; decision out).

Nothing here does I/O or reads the clock; dispatch, the executor and the service call these
functions with what they read and act on the answer. :mod:`.scopes` decides which tool
scopes a pipeline needs that an agent lacks; :mod:`.quiet_hours` whether a moment is quiet
and until when; :mod:`.budgets` whether a run, call or LLM call stays within its caps;
:mod:`.rate_limits` whether a call may start under a shared limit; :mod:`.fair_share` the
order work is shared between agents in.
"""
