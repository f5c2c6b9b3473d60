"""The jinja2 environment every HTML page and the reproduction scripts are rendered with.

Templates live in ``convcheck/report/templates``: ``*.html.j2`` are autoescaped
(text from the data can never become markup), ``*.py.j2`` (Python source) are
not. Undefined names raise, so a template and its caller cannot drift apart
silently.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent / "templates"


def environment() -> Any:
    """A jinja2 environment over ``TEMPLATES`` (autoescaping HTML, strict about undefined names)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "htm", "html.j2"], default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def inline_svg(svg: str) -> str:
    """An SVG document as inline markup: its XML declaration and doctype removed."""
    return re.sub(r"^\s*(<\?xml[^>]*\?>)?\s*(<!DOCTYPE[^>]*>)?", "", svg, flags=re.S)


__all__ = ["TEMPLATES", "environment", "inline_svg"]
