"""Translations: the subscriber's locale picks a step's templates, falling back without failing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from dispatcher import trigger
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.errors import ActionArgumentsError
from dispatcher.sending.rendering import TemplateRenderer
from dispatcher.sending.translations import locale_chain, render_localized
from models import Delivery
from tests.dispatcher.notify_support import subscriber, wait_until_terminal, wire, workflow
from tests.dispatcher.support import fetch

FIELDS = ("subject", "body")
TEMPLATE = {"subject": "Hello", "body": "Code {{ payload.code }}"}
TRANSLATED: dict[str, Any] = {
    "translations": {
        "pt": {"subject": "Olá", "body": "Código {{ payload.code }}"},
        "de": {"subject": "Hallo"},
        "fr": {"body": "{{ payload.code.missing.deeper }}"},
    }
}


@pytest.mark.parametrize(
    ("locale", "chain"),
    [(None, []), ("", []), ("pt-BR", ["pt-br", "pt"]), ("pt_BR", ["pt-br", "pt"]),
     ("de", ["de"]), ("zh-Hant-TW", ["zh-hant-tw", "zh"])],
)  # fmt: skip
def test_locale_chain(locale: str | None, chain: list[str]) -> None:
    assert locale_chain(locale) == chain


@pytest.mark.parametrize(
    ("locale", "rendered"),
    [
        ("pt-BR", {"subject": "Olá", "body": "Código 7"}),
        ("PT", {"subject": "Olá", "body": "Código 7"}),
        # Only the subject translated: the body is the default's.
        ("de-AT", {"subject": "Hallo", "body": "Code 7"}),
        # A translation that does not render: the default is sent, the delivery does not fail.
        ("fr", {"subject": "Hello", "body": "Code 7"}),
        ("ja", {"subject": "Hello", "body": "Code 7"}),
        (None, {"subject": "Hello", "body": "Code 7"}),
    ],
)
def test_render_localized(locale: str | None, rendered: dict[str, str]) -> None:
    context = {"payload": {"code": 7}}
    assert render_localized(TemplateRenderer(), TEMPLATE, TRANSLATED, locale, context, FIELDS) == (
        rendered
    )


@pytest.mark.parametrize(
    ("translations", "message"),
    [
        ({"pt": {"body": "{{ x"}}, "config.translations.pt.body: template syntax error on line 1"),
        ({"p t": {"body": "x"}}, "config.translations.p t: not a locale tag"),
        ({"pt": {"footer": "x"}}, "unknown template field 'footer'"),
        ({"pt": "Olá"}, "config.translations.pt: an object of template fields"),
    ],
)
def test_bad_translations_are_refused_naming_the_field(
    organisation_id: uuid.UUID, translations: dict[str, Any], message: str
) -> None:
    step = {"kind": "email", "template": TEMPLATE, "config": {"translations": translations}}
    with pytest.raises(ActionArgumentsError) as refused:
        workflow(organisation_id, "t", [step])
    assert message in str(refused.value)


@pytest.mark.usefixtures("worker")
def test_a_pt_br_subscriber_gets_the_pt_text_and_others_the_default(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id)
    subscriber(organisation_id, "ana", locale="pt-BR")
    subscriber(organisation_id, "max", locale="ja")
    subscriber(organisation_id, "eve")
    workflow(
        organisation_id, "code", [{"kind": "email", "template": TEMPLATE, "config": TRANSLATED}]
    )
    receipt = trigger(organisation_id, "code", ["ana", "max", "eve"], {"code": "42"})
    views = wait_until_terminal(organisation_id, receipt.transaction_id)
    sent = {view.subscriber: fetch(Delivery, uuid.UUID(view.delivery_id)).content for view in views}
    assert {view.status for view in views} == {"sent"}
    assert sent == {
        "ana": {"subject": "Olá", "body": "Código 42"},
        "max": {"subject": "Hello", "body": "Code 42"},
        "eve": {"subject": "Hello", "body": "Code 42"},
    }
