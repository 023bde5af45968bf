"""Fixtures of the chaos tests: figures reach the terminal."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def say(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Print past pytest's capture: the figures of a run belong in its output."""

    def emit(text: str) -> None:
        with capsys.disabled():
            print(f"\n[chaos] {text}", flush=True)

    return emit
