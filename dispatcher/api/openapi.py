"""The committed OpenAPI document: ``python -m dispatcher.api.openapi`` (``make openapi``)
rewrites ``openapi.json`` at the repository root from the application's routes and models."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from dispatcher.api.app import create_app
from dispatcher.config import Settings

DOCUMENT = Path("openapi.json")


def document() -> dict[str, Any]:
    # Built with the defaults, so that no local setting leaks into the committed file.
    return create_app(Settings(_env_file=None), idempotency_store=_NoStore()).openapi()


def rendered() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


class _NoStore:
    """The document needs no idempotency store; this one is never called."""

    async def claim(self, key: str, fingerprint: str) -> None:
        raise NotImplementedError

    async def finish(self, key: str, answer: object, ttl: float) -> None:
        raise NotImplementedError

    async def release(self, key: str) -> None:
        raise NotImplementedError

    async def get(self, key: str) -> None:
        raise NotImplementedError


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DOCUMENT
    target.write_text(rendered())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
