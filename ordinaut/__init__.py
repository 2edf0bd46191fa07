"""Ordinaut: time, state and discipline for a personal fleet of AI agents.

The Celery app is ``ordinaut.celery.app`` (Celery's convention, so ``celery -A ordinaut
worker`` finds it); importing the package loads nothing else.
"""

__version__ = "0.1.0"
