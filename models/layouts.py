"""Email layouts: an organisation's frame (logo, colours, footer) around its steps' email bodies."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Mutable, Row, Tenant


class EmailLayout(Row, Mutable, Tenant, Base):
    __tablename__ = "email_layouts"
    __table_args__ = (UniqueConstraint("organisation_id", "key"),)

    #: What a step's ``config.layout`` names (``brand``), unique per organisation.
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    #: Jinja2 (sandboxed) with ``{{ body }}`` where the step's HTML goes; also ``subject``,
    #: ``logo_url``, ``colors``, ``footer``, ``subscriber``, ``payload``.
    html: Mapped[str] = mapped_column(Text)
    logo_url: Mapped[str | None] = mapped_column(String(2048))
    #: Named colours for the template: ``{"primary": "#0055ff", "background": "#ffffff"}``.
    colors: Mapped[dict[str, Any]] = mapped_column(default=dict)
    footer: Mapped[str | None] = mapped_column(Text)
    #: The organisation's default: wraps every email step that names no layout.
    is_default: Mapped[bool] = mapped_column(default=False)
