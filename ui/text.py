"""Text typed by customers and agents, or written by the model, shown as text: HTML in it is displayed, never
rendered (Gradio's sanitiser already stops scripts; this also stops fake images, links and layout)."""

from __future__ import annotations

import html


def literal(text: str) -> str:
    return html.escape(text, quote=False)
