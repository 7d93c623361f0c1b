"""Faces for outside frameworks: :mod:`docvlm.integrations.langchain` (langchain-core tools) and
:mod:`docvlm.integrations.mcp` (a Model Context Protocol server). Each imports its framework lazily."""
