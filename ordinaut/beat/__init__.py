"""Beat: the Celery beat scheduler whose schedule is PostgreSQL, and the firing it does.

:mod:`.firing` turns due tasks into due_work rows in one transaction per batch (the pure
decisions come from :mod:`ordinaut.scheduling`); :mod:`.scheduler` is the Celery
``Scheduler`` that calls it every tick. Both do I/O, which is why they live here and not in
the pure ``scheduling`` package.
"""
