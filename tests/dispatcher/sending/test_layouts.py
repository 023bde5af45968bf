"""Email layouts around a step's email, and the text part derived from HTML."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from dispatcher import trigger
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.errors import ActionArgumentsError
from dispatcher.sending.layouts import choose_layout, finish_email, html_to_text
from dispatcher.sending.rendering import TemplateRenderer
from models import Delivery
from tests.dispatcher.notify_support import act, subscriber, wait_until_terminal, wire, workflow
from tests.dispatcher.support import fetch

BRAND = (
    '<table style="background:{{ colors.primary }}"><img src="{{ logo_url }}">'
    "<h1>{{ subject }}</h1>{{ body }}<footer>{{ footer }}</footer></table>"
)


@dataclass(frozen=True)
class Layout:
    key: str
    html: str = "[{{ body }}]"
    is_default: bool = False
    logo_url: str | None = None
    colors: dict[str, Any] = field(default_factory=dict)
    footer: str | None = None
    organisation_id: uuid.UUID = field(default_factory=uuid.uuid4)


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>Hello <b>Ada</b></p><p>Bye</p>", "Hello Ada\n\nBye"),
        ("a<br>b", "a\nb"),
        ('<a href="https://x.test/o/1">your order</a>', "your order (https://x.test/o/1)"),
        ("<style>p{color:red}</style><p>x &amp; y</p><script>z()</script>", "x & y"),
    ],
)
def test_html_to_text(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


def test_choosing_a_layout() -> None:
    brand, plain = Layout("brand", is_default=True), Layout("plain")
    assert choose_layout([brand, plain], {}) is brand
    assert choose_layout([brand, plain], {"layout": "plain"}) is plain
    assert choose_layout([brand, plain], {"layout": "gone"}) is brand
    assert choose_layout([brand, plain], {"layout": False}) is None
    assert choose_layout([plain], {}) is None


def test_finishing_an_email() -> None:
    renderer = TemplateRenderer()
    wrapped = finish_email(renderer, Layout("l"), {"body": "a < b\nc"}, {})
    assert wrapped == {"body": "a < b\nc", "html": "[a &lt; b<br>\nc]"}
    derived = finish_email(renderer, None, {"html": "<p>Hi</p>"}, {})
    assert derived == {"html": "<p>Hi</p>", "body": "Hi"}
    broken = finish_email(renderer, Layout("l", html="{{ body.x.y }}"), {"html": "<p>Hi</p>"}, {})
    assert broken["html"] == "<p>Hi</p>"


def test_a_layout_without_body_is_refused(organisation_id: uuid.UUID) -> None:
    with pytest.raises(ActionArgumentsError, match=r"\{\{ body \}\}"):
        act(organisation_id, "create_layout", {"key": "x", "name": "x", "html": "<p>no</p>"})


@pytest.mark.usefixtures("worker")
def test_the_default_layout_wraps_email_and_html_only_steps_get_a_text_part(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id)
    subscriber(organisation_id, "ada", first_name="Ada")
    act(organisation_id, "create_layout", {"key": "old", "name": "Old", "html": "{{ body }}",
                                           "default": True})  # fmt: skip
    act(organisation_id, "create_layout", {
        "key": "brand", "name": "Brand", "html": BRAND, "logo_url": "https://cdn.test/logo.png",
        "colors": {"primary": "#0055ff"}, "footer": "Acme Ltd", "default": True,
    })  # fmt: skip
    workflow(organisation_id, "shipped", [
        {"kind": "email", "template": {"subject": "Shipped", "html": "<p>Order <b>{{ payload.id }}</b></p>"}},
        {"kind": "email", "template": {"subject": "Raw", "body": "Order {{ payload.id }}"},
         "config": {"layout": False}},
    ])  # fmt: skip
    receipt = trigger(organisation_id, "shipped", "ada", {"id": "A-7"})
    views = wait_until_terminal(organisation_id, receipt.transaction_id)
    assert [view.status for view in views] == ["sent", "sent"]
    first, second = (fetch(Delivery, uuid.UUID(view.delivery_id)).content for view in views)
    assert first == {
        "subject": "Shipped",
        "body": "Order A-7",
        "html": '<table style="background:#0055ff"><img src="https://cdn.test/logo.png">'
        "<h1>Shipped</h1><p>Order <b>A-7</b></p><footer>Acme Ltd</footer></table>",
    }
    assert second == {"subject": "Raw", "body": "Order A-7"}


def test_preview_shows_the_email_in_its_layout(organisation_id: uuid.UUID) -> None:
    from dispatcher.notifications.preview import preview

    subscriber(organisation_id, "ada")
    act(organisation_id, "create_layout", {"key": "l", "name": "L", "html": "<main>{{ body }}</main>",
                                           "default": True})  # fmt: skip
    workflow(organisation_id, "w", [{"kind": "email", "template": {"html": "<p>Hi</p>"}}])
    shown = preview(organisation_id, "w", 0, {}, subscriber_id="ada")
    assert shown.content == {"html": "<main><p>Hi</p></main>", "body": "Hi"}
