"""The catalogue as a whole: every registered provider loads and has its own contract tests."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from providers import ChannelType, ProviderRegistry, UnknownProviderError
from providers.base import Credentials, Provider
from tests.providers.harness import ProviderContract

TESTS = Path(__file__).parent
REAL = [
    name
    for name in ProviderRegistry(load_entry_points=False).names()
    if not name.startswith("fake")
]


def test_at_least_24_real_providers_across_every_outbound_channel() -> None:
    registry = ProviderRegistry(load_entry_points=False)
    assert len(REAL) >= 24
    channels = {registry.get(name).channel for name in REAL}
    assert channels >= {
        ChannelType.EMAIL,
        ChannelType.SMS,
        ChannelType.CHAT,
        ChannelType.PUSH,
        ChannelType.WEBHOOK,
    }


@pytest.mark.parametrize("name", REAL)
def test_provider_loads_declares_itself_and_has_contract_tests(name: str) -> None:
    provider_class = ProviderRegistry(load_entry_points=False).get(name)
    assert issubclass(provider_class, Provider)
    assert provider_class.name == name
    assert provider_class.display_name
    assert issubclass(provider_class.credentials_model, Credentials)
    module = importlib.import_module(f"tests.providers.test_{name}")
    contracts = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, ProviderContract)
        and value is not ProviderContract
    ]
    if name != "smtp":  # SMTP is not HTTP: tested against a real local SMTP server instead
        assert contracts, f"tests/providers/test_{name}.py has no ProviderContract subclass"
        assert any(contract.case.provider is provider_class for contract in contracts)


def test_unknown_provider_names_the_known_ones() -> None:
    with pytest.raises(UnknownProviderError) as caught:
        ProviderRegistry(load_entry_points=False).get("carrier-pigeon")
    assert "sendgrid" in str(caught.value)


def test_third_party_providers_register_in_code() -> None:
    from providers.fake import FakeProvider

    class AcmeProvider(FakeProvider):
        name = "acme"

    registry = ProviderRegistry(load_entry_points=False)
    registry.register(AcmeProvider)
    assert registry.get("acme") is AcmeProvider
    assert "acme" in registry.names()


def test_a_provider_registered_in_code_can_be_taken_out() -> None:
    from providers.fake import FakeProvider

    class AcmeProvider(FakeProvider):
        name = "acme"

    class OwnSendGrid(FakeProvider):
        name = "sendgrid"

    registry = ProviderRegistry(load_entry_points=False)
    registry.register(AcmeProvider)
    registry.register(OwnSendGrid)
    registry.unregister("acme")
    registry.unregister("sendgrid")
    assert "acme" not in registry.names()
    with pytest.raises(UnknownProviderError):
        registry.get("acme")
    assert registry.get("sendgrid").__name__ == "SendGridProvider"  # the built-in again
