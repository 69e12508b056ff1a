"""Constrained decoding: a JSON schema as the one grammar both engines decode with (xgrammar's EBNF, compact
`json.dumps` spacing), so a model trained on `json.dumps` output meets the same text at serving time."""

from __future__ import annotations

import json
from functools import lru_cache


@lru_cache(maxsize=256)
def _grammar(schema_json: str) -> str:
    import xgrammar

    return str(xgrammar.Grammar.from_json_schema(schema_json, any_whitespace=False))


def json_schema_grammar(schema: dict) -> str:
    """The EBNF grammar of the JSON texts valid under `schema`, one line, `", "` and `": "` separators."""
    return _grammar(json.dumps(schema))  # key order is kept: it is the order the grammar writes properties in
