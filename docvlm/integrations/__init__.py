"""Faces for outside frameworks: [`docvlm.integrations.langchain`][docvlm.integrations.langchain] (langchain-core tools) and
[`docvlm.integrations.mcp`][docvlm.integrations.mcp] (a Model Context Protocol server). Each imports its framework lazily."""
