"""Every registered provider has a Novu id, the ids are one-to-one, and each mapped field is
one the provider's credentials or settings model has."""

from __future__ import annotations

from dispatcher.api.novu_providers import BY_NAME, BY_NOVU_ID, PROVIDERS, from_novu_id, novu_id
from providers import default_registry
from providers.registry import ProviderRegistry


def test_every_registered_provider_has_a_mapping_and_back() -> None:
    # A fresh registry: other tests register providers of their own in the default one.
    shipped = ProviderRegistry().names()
    assert set(shipped) <= set(BY_NAME)
    assert len(BY_NOVU_ID) == len(BY_NAME) == len(PROVIDERS)
    for name in shipped:
        assert from_novu_id(novu_id(name)).name == name


def test_mapped_fields_exist_on_the_providers_models() -> None:
    for mapping in PROVIDERS:
        provider = default_registry.get(mapping.name)
        fields = {
            "credentials": set(provider.credentials_model.model_fields),
            "settings": set(provider.settings_model.model_fields),
        }
        for novu_name, (part, target) in mapping.fields.items():
            if target.startswith("*"):
                continue
            assert target in fields[part], (mapping.name, novu_name, target)


def test_novus_names_for_renamed_providers() -> None:
    assert {name: novu_id(name) for name in ("smtp", "brevo", "vonage", "onesignal", "teams")} == {
        "smtp": "nodemailer", "brevo": "sendinblue", "vonage": "nexmo",
        "onesignal": "one-signal", "teams": "msteams",
    }  # fmt: skip


def test_providers_said_to_be_novus_are_in_the_sdks_provider_ids() -> None:
    """``in_novu`` decides whether a job names the provider's id or the channel's generic one;
    the SDK refuses an answer with an id outside its closed list."""
    from novu_py.models.providersidenum import ProvidersIDEnum

    ids = {member.value for member in ProvidersIDEnum}
    claimed = {p.name: p.novu_id for p in PROVIDERS if p.in_novu}
    assert {name: novu for name, novu in claimed.items() if novu not in ids} == {}
    unclaimed = {p.name for p in PROVIDERS if not p.in_novu and p.novu_id in ids}
    assert unclaimed == set()
