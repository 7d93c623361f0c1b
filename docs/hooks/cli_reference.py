"""mkdocs hook: the command-line reference page is generated from the typer app at build time.

A page that contains the marker ``<!-- docvlm-cli-reference -->`` gets it replaced by typer's own Markdown for
``docvlm`` and every command (usage, arguments, options, defaults), so the page cannot drift from the CLI.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- docvlm-cli-reference -->"


def cli_markdown() -> str:
    """The reference of the ``docvlm`` command, its headings one level down (the page has its own title)."""
    import typer
    import typer.cli

    from docvlm.cli import app

    command = typer.main.get_command(app)
    text = typer.cli.get_docs_for_click(obj=command, ctx=typer.Context(command), name="docvlm")
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        lines.append("#" + line if line.startswith("#") and not fenced else line)
    return "\n".join(lines) + "\n"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return markdown.replace(MARKER, cli_markdown()) if MARKER in markdown else markdown
