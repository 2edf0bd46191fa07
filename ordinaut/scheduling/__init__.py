"""Pure recurrence math: cron, RRULE and one-off schedules, time zones and DST, misfire, jitter.

Nothing in this package (except the beat scheduler) does I/O or reads the clock; the time is
always an argument. Entry points: :func:`ordinaut.scheduling.recurrence.parse_schedule`,
:func:`ordinaut.scheduling.misfire.plan_catch_up`, :func:`ordinaut.scheduling.jitter.jitter_delay`.
"""
