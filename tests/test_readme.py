"""The README's code that users copy must work."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from providers.webhook import sign

README = Path(__file__).parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_webhook_verification_recipe_accepts_real_signatures_and_refuses_others() -> None:
    [recipe] = [block for block in python_blocks() if "def verify(" in block]
    namespace: dict[str, Any] = {}
    exec(recipe, namespace)
    verify = namespace["verify"]
    body = b'{"id": "d-1", "body": "hello"}'
    timestamp = str(int(time.time()))
    header = sign("whsec-123456", timestamp, body)
    assert verify("whsec-123456", timestamp, body, header)
    assert verify("whsec-123456", timestamp, body, f"v1=deadbeef, {header}")
    assert not verify("whsec-123456", timestamp, body + b" ", header)
    assert not verify("other-secret", timestamp, body, header)
    stale = str(int(time.time()) - 3600)
    assert not verify("whsec-123456", stale, body, sign("whsec-123456", stale, body))
