"""Pure recurrence math: cron, RRULE and one-off schedules, time zones and DST, misfire, jitter.

Nothing in this package does I/O or reads the clock; the time is always an argument (an
import-linter contract keeps database, Redis, HTTP and Celery out). Entry points:
:func:`ordinaut.scheduling.recurrence.parse_schedule`,
:func:`ordinaut.scheduling.misfire.plan_catch_up`, :func:`ordinaut.scheduling.jitter.jitter_delay`,
:func:`ordinaut.scheduling.planning.plan_due_task`. The beat scheduler that uses them is
:mod:`ordinaut.beat`.
"""
