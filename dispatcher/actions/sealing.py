"""Sealed fields: encrypted between the producer and the worker.

Task arguments are visible in Flower and in the broker, so a field marked ``Sealed()`` (integration
credentials) travels as ``{"$sealed": <Fernet token>}`` and is opened only inside the worker.
"""

from __future__ import annotations

import json
from typing import Any

from dispatcher.actions.base import ActionSpec
from models import credential_keys

SEALED_MARKER = "$sealed"


def seal(spec: ActionSpec[Any], arguments: dict[str, Any]) -> dict[str, Any]:
    sealed = dict(arguments)
    for field in spec.sealed_keys():
        value = sealed.get(field)
        if value is not None and not is_sealed(value):
            token = credential_keys.encrypt(json.dumps(value).encode("utf-8"))
            sealed[field] = {SEALED_MARKER: token}
    return sealed


def unseal(spec: ActionSpec[Any], arguments: dict[str, Any]) -> dict[str, Any]:
    opened = dict(arguments)
    for field in spec.sealed_keys():
        value = opened.get(field)
        if isinstance(value, dict) and is_sealed(value):
            opened[field] = json.loads(credential_keys.decrypt(str(value[SEALED_MARKER])))
    return opened


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {SEALED_MARKER}
