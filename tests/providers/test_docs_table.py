"""The README's provider table lists every built-in provider, with what its class declares."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel, SecretBytes, SecretStr

from providers.base import Provider
from providers.registry import ProviderRegistry

DOC = Path(__file__).resolve().parents[2] / "README.md"
HEADER = (
    "provider", "name", "channel", "credentials", "settings",
    "message id", "idempotency key", "attachments", "HTML", "check",
)  # fmt: skip
BUILT_IN = ProviderRegistry(load_entry_points=False)


def table_rows() -> dict[str, dict[str, str]]:
    """The providers table of the page, by provider name."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("| provider |"))
    assert tuple(cell.strip() for cell in lines[header].strip("|").split("|")) == HEADER
    rows: dict[str, dict[str, str]] = {}
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        cells = dict(
            zip(HEADER, (cell.strip() for cell in line.strip("|").split("|")), strict=True)
        )
        rows[cells["provider"].strip("`")] = cells
    return rows


def listed(model: type[BaseModel]) -> str:
    """How the table lists a model's fields: ``?`` when optional, secrets marked."""
    cells = []
    for field, info in model.model_fields.items():
        secret = any(kind in (SecretStr, SecretBytes) for kind in get_args(info.annotation))
        secret = secret or info.annotation in (SecretStr, SecretBytes)
        optional = "" if info.is_required() else "?"
        cells.append(f"`{field}`{optional}{' *(secret)*' if secret else ''}")
    return ", ".join(cells) or "none"


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def test_every_registered_provider_is_in_the_table_and_nothing_else() -> None:
    rows = table_rows()
    assert sorted(rows) == BUILT_IN.names()


@pytest.mark.parametrize("name", BUILT_IN.names())
def test_the_row_matches_the_class(name: str) -> None:
    provider = BUILT_IN.get(name)
    row = table_rows()[name]
    assert row["name"] == provider.display_name
    assert row["channel"].split()[0] == provider.channel.value
    attachments = f"up to {provider.max_attachments}" if provider.max_attachments else "no"
    assert row["attachments"] == attachments
    assert row["message id"].split()[0] == yes_no(provider.returns_message_id)
    assert row["idempotency key"] == yes_no(provider.supports_idempotency_key)
    assert row["HTML"] == yes_no(provider.supports_html)
    assert row["check"] == yes_no(provider.check is not Provider.check)
    assert row["credentials"] == listed(provider.credentials_model)
    assert row["settings"] == listed(provider.settings_model)
