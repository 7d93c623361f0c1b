"""Workflows: tasks composed as tools a model can call (render, zoom, read, tables, ground, answer), an agent
loop that lets a model choose the calls, fixed pipelines, and traces of what ran."""

from docvlm.workflows.agent import Agent, AgentResult, ToolSpec, tool_call_type
from docvlm.workflows.pipelines import (
    EXTRA_TOOLS,
    FieldValue,
    PipelineResult,
    extract_table_tool,
    layout_tool,
    read_field,
    read_tables,
    toolbox,
)
from docvlm.workflows.tools import Tool, Toolbox, ToolError, ToolResult
from docvlm.workflows.trace import Region, Step, Trace, TracedToolbox

__all__ = [
    "EXTRA_TOOLS",
    "Agent",
    "AgentResult",
    "FieldValue",
    "PipelineResult",
    "Region",
    "Step",
    "Tool",
    "ToolError",
    "ToolResult",
    "ToolSpec",
    "Toolbox",
    "Trace",
    "TracedToolbox",
    "extract_table_tool",
    "layout_tool",
    "read_field",
    "read_tables",
    "tool_call_type",
    "toolbox",
]
