"""Dispatch and runs: due_work leasing, the run state machine, retries, leases and the reaper."""
