"""Tasks: what users call: functions from a model and a page to typed results in page space."""

from docvlm.tasks.tables import find_tables

__all__ = ["find_tables"]
