"""``docvlm serve``: any docvlm [`Model`][docvlm.models.base.Model] behind an OpenAI-compatible HTTP API.

Starlette on uvicorn (the ``serve`` extra: ``pip install 'docvlm[serve]'``), with these endpoints:

- ``POST /v1/chat/completions``: chat completions with text and ``image_url`` (``data:`` URL) parts;
  structured output from ``response_format`` (``json_schema``, or llama.cpp's ``json_object`` with a
  ``schema``), vLLM's ``structured_outputs`` (``json`` / ``choice`` / ``regex``) or older ``guided_json`` /
  ``guided_choice`` / ``guided_regex`` fields, or SGLang's ``regex``; function ``tools`` with ``tool_choice``
  (``auto``, ``required``, ``none`` or one named function); ``stream`` (server-sent events, with
  ``stream_options.include_usage``); ``usage`` counts;
- ``GET /v1/models`` (and ``/v1/models/{id}``): the one model served;
- ``GET /health``: ``{"status": "ok"}`` (no API key needed).

A JSON schema is turned into a Python type ([`schema_to_type`][docvlm.decoding.schema_to_type], with the ``format``\\ s
``date``, ``date-time``, ``time``, ``uuid``, ``email`` and ``ipv4``) and decoded under docvlm's constraint, so a
local model's JSON answers always validate against the schema the client sent. Tool calls are decoded under
the same constrained union as [`Agent`][docvlm.workflows.agent.Agent]'s: ``{"tool": <name>, "args": <its
arguments>}`` for each tool offered (plus ``{"content": ...}`` with ``tool_choice: auto``), so every call the
server returns names an offered tool and has arguments valid under its schema. Requests that arrive together
with the same output type and settings are answered in one [`Model.generate_batch`][docvlm.models.base.Model.generate_batch] call, and the model is
only ever called from one thread. A stream sends the answer as chunks once it is decoded whole (the model
seam returns whole outputs), so it is client-compatible, not token-by-token.

What the server enforces ([`ServeLimits`][docvlm.serve.ServeLimits]): an optional API key (``Authorization: Bearer``); JSON bodies
only (``Content-Type: application/json``, else 415, which also keeps browsers' cross-site "simple" requests
out) under a size limit (413) and a nesting limit; a Host header naming loopback when it listens on loopback
(DNS rebinding); 400 with one line for every malformed request (no ``NaN``, no unknown roles, schemas
outside the supported subset, ...); images decoded only after their header's pixel count fits the per-image
and per-request budgets (413); schema conversion and constraint compilation bounded in automaton size,
nesting and time, and cancelled when the client goes away; request, body, header and keep-alive timeouts;
at most ``max_concurrency`` worker threads and ``max_connections`` connections.

``usage`` counts tokens with the model's tokenizer when it has one (a ``tokenizer`` attribute, or a
``processor`` with one); otherwise it estimates one token per four characters of text. Images are not
counted.

Example::

    server, url = make_server(model, port=8000)   # url == "http://127.0.0.1:8000/v1"
    server.serve_forever()
"""

from __future__ import annotations

from docvlm.decoding import schema_to_type

from ._server import API_KEY_ENV, DocVLMServer, ServeLimits, make_server, serve

__all__ = ["API_KEY_ENV", "DocVLMServer", "ServeLimits", "make_server", "schema_to_type", "serve"]
