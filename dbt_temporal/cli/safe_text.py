"""Strings from the server, made safe to print on a terminal.

Workflow ids, node messages and log lines can be set by anyone who can start a workflow on the
namespace. Printed raw, an escape sequence would drive the reader's terminal and rich markup
(`[/x]`) would crash the table it sits in; shown as `\\x1b`, neither can.
"""

from __future__ import annotations

import re

from rich.text import Text

# C0 controls but tab and newline, DEL, and C1 controls (some terminals act on those too).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def plain(text: object, style: str = "") -> Text:
    """A rich Text that is never read as markup, with control characters shown escaped."""
    return Text(terminal_safe(str(text)), style=style)
