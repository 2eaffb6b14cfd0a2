"""Every JSON file the project reads from a data home or a drop, read one way.

UTF-8 with or without a byte-order mark (Windows Notepad writes one), and a file nested thousands deep
(which makes Python's parser raise RecursionError) is refused like any other broken file: the caller
turns ``UnreadableJson`` into its sentence naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path


class UnreadableJson(ValueError):
    """Not UTF-8 JSON; the message names the fault's kind only, never the file's text."""


def parse_json(data: bytes) -> object:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise UnreadableJson(f"is not valid UTF-8 JSON ({type(exc).__name__})") from None


def read_json(path: Path) -> object:
    """The parsed contents of ``path``; ``UnreadableJson`` where it is no UTF-8 JSON."""
    return parse_json(path.read_bytes())
