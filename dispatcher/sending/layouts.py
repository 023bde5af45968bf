"""Email layouts: the organisation's frame around a step's email, and plain text from HTML.

An email step is wrapped in the layout its ``config.layout`` names, or else the organisation's
default one; ``"layout": false`` sends the step as it is. The layout is a sandboxed template
like any other, rendered with the step's HTML as ``body`` (a step with only a text body has it
escaped, line breaks kept), the rendered ``subject``, the layout's ``logo_url``, ``colors`` and
``footer``, and the step's own context. A layout that names a missing key, or does not render,
leaves the step's email unwrapped rather than failing it: the organisation's frame is
decoration, the message is what must arrive.

A step with only an HTML template gets its plain-text part derived from that HTML (block
elements as lines, links as ``text (url)``, scripts and styles dropped), so every email still
has a text alternative.
"""

from __future__ import annotations

import html
import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.sending.rendering import RenderError, TemplateRenderer
from models import EmailLayout

logger = logging.getLogger(__name__)

#: ``config`` key of an email step: a layout's key, or ``false`` for none.
LAYOUT = "layout"

_BLOCKS = frozenset(
    {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol",
     "blockquote", "section", "article", "header", "footer", "hr"}
)  # fmt: skip
_HIDDEN = frozenset({"script", "style", "head", "title"})
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n{3,}")


class LayoutRow(Protocol):
    @property
    def organisation_id(self) -> uuid.UUID: ...
    @property
    def key(self) -> str: ...
    @property
    def html(self) -> str: ...
    @property
    def logo_url(self) -> str | None: ...
    @property
    def colors(self) -> dict[str, Any]: ...
    @property
    def footer(self) -> str | None: ...
    @property
    def is_default(self) -> bool: ...


LAYOUT_COLUMNS = tuple(
    getattr(EmailLayout, name)
    for name in ("organisation_id", "key", "html", "logo_url", "colors", "footer", "is_default")
)


def load_layouts(
    session: Session, organisations: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[LayoutRow]]:
    """Every layout of the organisations (a handful each), in one query."""
    wanted = set(organisations)
    found: dict[uuid.UUID, list[LayoutRow]] = {}
    if not wanted:
        return found
    for row in session.execute(
        select(*LAYOUT_COLUMNS).where(EmailLayout.organisation_id.in_(wanted))
    ):
        found.setdefault(row.organisation_id, []).append(row)
    return found


def choose_layout(layouts: Iterable[LayoutRow], config: Mapping[str, Any]) -> LayoutRow | None:
    named = config.get(LAYOUT)
    if named is False:
        return None
    rows = list(layouts)
    if isinstance(named, str):
        chosen = next((row for row in rows if row.key == named), None)
        if chosen is not None:
            return chosen
    return next((row for row in rows if row.is_default), None)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0
        self.links: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")
        elif tag == "a":
            self.links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(self.hidden - 1, 0)
        elif tag in _BLOCKS:
            self.parts.append("\n")
        elif tag == "a" and self.links:
            href = self.links.pop()
            if href and not href.startswith(("#", "mailto:")):
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """A readable plain-text version of an HTML email."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(parser.parts).split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def finish_email(
    renderer: TemplateRenderer,
    layout: LayoutRow | None,
    rendered: dict[str, str],
    context: Mapping[str, Any],
) -> dict[str, str]:
    """The email's fields with the text part derived when missing and the HTML wrapped in
    ``layout``."""
    finished = dict(rendered)
    if not finished.get("body") and finished.get("html"):
        finished["body"] = html_to_text(finished["html"])
    if layout is None:
        return finished
    inner = finished.get("html") or html.escape(finished.get("body", "")).replace("\n", "<br>\n")
    try:
        finished["html"] = renderer.render(
            layout.html,
            {
                **context,
                "body": inner,
                "subject": finished.get("subject", ""),
                "logo_url": layout.logo_url,
                "colors": layout.colors or {},
                "footer": layout.footer,
            },
        )
    except RenderError as exc:
        logger.warning(
            "layout %r does not render (%s): the email is sent without it", layout.key, exc
        )
    return finished
