"""Field types shared by action argument models."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Key = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
]
LongText = Annotated[str, StringConstraints(max_length=100_000)]
Url = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://")]
