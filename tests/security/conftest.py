"""Fixtures of the security tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _close_in_process_sending() -> Iterator[None]:
    """Tests that send in this process leave a pooled HTTP client behind: close it at the end."""
    yield
    from dispatcher.sending.batch import sending_runtime

    if sending_runtime.cache_info().currsize:
        sending_runtime().close()
