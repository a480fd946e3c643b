"""Celery tasks: thin shells that take ids, re-read state and call one service."""
