"""Workflows: tasks composed as tools a model can call (render, zoom, read, tables, ground, answer)."""

from docvlm.workflows.tools import Tool, Toolbox, ToolError, ToolResult

__all__ = ["Tool", "ToolError", "ToolResult", "Toolbox"]
