"""The README's code that users copy must work."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from providers.webhook import sign
from tests.dispatcher.notify_support import wait_until_terminal

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


@pytest.mark.usefixtures("worker")
def test_the_first_run_example_sends_its_email_through_a_worker() -> None:
    [example] = [block for block in python_blocks() if "create_organisation(" in block]
    namespace: dict[str, Any] = {}
    exec(example, namespace)
    views = wait_until_terminal(namespace["org_id"], namespace["receipt"].transaction_id)
    assert [(view.subscriber, view.channel, view.status) for view in views] == [
        ("user-42", "email", "sent")
    ]
