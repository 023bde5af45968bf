"""Templates are tenant input: injections are refused or harmless, and long or huge renders are
stopped by the renderer's budgets with a ``RenderError`` (never by a clock in the test)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from dispatcher import trigger
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from dispatcher.sending.batch import process_batch
from dispatcher.sending.rendering import LOOP_BUDGET, RANGE_BUDGET, RenderError, TemplateRenderer
from models import Delivery
from tests.dispatcher.notify_support import (
    subscriber,
    wait_until_terminal,
    wire,
    workflow,
)
from tests.security.support import email_step, open_deliveries, parked, sending_settings

CONTEXT: dict[str, Any] = {
    "payload": {"code": "1234", "n": 10**9, "text": "a" * 60_000, "items": [{"t": "x"}] * 3},
    "subscriber": {"first_name": "Ada", "email": "ada@example.com"},
    "actor": {},
}

INJECTIONS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.environ }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ request.application.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ range.__self__ }}",
    "{{ range.__func__.__globals__ }}",
    "{{ '{0.__class__}'.format(payload) }}",
    "{{ '{0.__class__.__mro__}'.format(payload) }}",
    "{{ '{0.__init__.__globals__}'.format(cycler) }}",
    "{{ '{x.__class__}'.format_map({'x': payload}) }}",
    "{{ '%s'|format(cycler.__init__) }}",
    "{{ payload|attr('__class__') }}",
    "{{ (payload|attr('__class__')|attr('__mro__'))[1]|attr('__subclasses__')() }}",
    "{{ lipsum|attr('__globals__') }}",
    "{{ ''['\\x5f\\x5fclass\\x5f\\x5f'] }}",
    "{{ payload['__class__'] }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{% set x = cycler.__init__ %}{{ x }}",
    "{{ lipsum }}",
    "{{ cycler }}",
    "{{ range }}",
    "{{ self }}",
    "{{ ''.upper }}",
    "{{ namespace(a=1) }}",
    "{{ [lipsum] }}",
    "{{ {'f': cycler} }}",
    "{{ lipsum ~ '' }}",
    "{% include 'x' %}",
    "{% import 'os' as os %}",
    "{% set l = [] %}{{ l.append(1) }}{{ l }}",
]
#: What a leak of the Python side would show.
LEAK_MARKERS = (
    "<class", "<function", "<built-in", "<bound", "<module", " object at 0x", "__", "mro",
    "globals", "jinja2", "dispatcher", "environ", "TemplateReference", "Namespace", "Cycler",
    "uid=", os.environ["DISPATCHER_ENCRYPTION_KEYS"], "postgresql",
)  # fmt: skip


def render(source: str, renderer: TemplateRenderer | None = None) -> str:
    return (renderer or TemplateRenderer()).render(source, CONTEXT)


@pytest.mark.parametrize("source", INJECTIONS)
def test_template_injections_are_refused_or_render_harmlessly(source: str) -> None:
    try:
        output = render(source)
    except RenderError as exc:
        message = str(exc)
        assert os.environ["DISPATCHER_ENCRYPTION_KEYS"] not in message
        return
    leaked = [marker for marker in LEAK_MARKERS if marker in output]
    assert not leaked, (source, output[:300])


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ lipsum }}", "cannot output a method"),
        ("{{ cycler }}", "cannot output a type"),
        ("{{ self }}", "cannot output a TemplateReference"),
        ("{{ [1, lipsum] }}", "cannot output a method"),
        ("{{ lipsum ~ '' }}", "cannot output a method"),
        ("{% set l = [] %}{{ l.append(1) }}", "SecurityError"),
        ("{{ ''.__class__.__name__ }}", "SecurityError"),
    ],
)
def test_python_objects_are_refused_with_a_reason(source: str, reason: str) -> None:
    with pytest.raises(RenderError, match=reason):
        render(source)


LONG_OR_HUGE = [
    # Loops: range has a small budget, all loops together a larger one.
    ("{% for i in range(10**9) %}{% endfor %}", f"loops over more than {RANGE_BUDGET}"),
    ("{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}",
     f"loops over more than {RANGE_BUDGET}"),
    ("{% set s = 'x' * 10000 %}{% for i in s %}{% for j in s %}{% for k in s %}"
     "{% endfor %}{% endfor %}{% endfor %}", f"loops run more than {LOOP_BUDGET}"),
    ("{% for i in payload.text %}{% for j in payload.text %}{% endfor %}{% endfor %}",
     f"loops run more than {LOOP_BUDGET}"),
    # Values made huge in one operation, checked before the operation runs.
    ("{{ 'x' * 10**9 }}", "more than 200000 characters"),
    ("{{ 'x' * payload.n }}", "more than 200000 characters"),
    ("{{ ('ab' * 1000) * 1000000 }}", "more than 200000 characters"),
    ("{{ [payload.text] * 10000 }}", "more than 200000 characters"),
    ("{{ 2 ** payload.n }}", "number of more than"),
    ("{% set ns = namespace(n=3) %}{% for i in range(64) %}{% set ns.n = ns.n * ns.n %}"
     "{% endfor %}", "number of more than"),
    ("{% set ns = namespace(s=payload.text) %}{% for i in range(40) %}"
     "{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "more than 200000 characters"),
    ("{% set ns = namespace(s=payload.text) %}{% for i in range(40) %}"
     "{% set ns.s = ns.s + ns.s %}{% endfor %}", "more than 200000 characters"),
    ("{{ payload.text|replace('a', payload.text) }}", "more than 200000 characters"),
    ("{{ payload.text.replace('a', payload.text) }}", "more than 200000 characters"),
    ("{{ payload.text.translate({97: payload.text}) }}", "more than 200000 characters"),
    ("{% set p = payload.text %}{{ [p, p, p, p, p, p, p, p]|join }}", "more than 200000"),
    ("{% set p = payload.text %}{{ ''.join([p, p, p, p, p, p, p, p]) }}", "more than 200000"),
    ("{% set p = payload.text %}{{ [p, p, p, p, p, p, p, p] }}", "more than 200000"),
    ("{% set p = payload.text %}{{ [p, p, p, p, p, p, p, p]|string }}", "more than 200000"),
    ("{{ 'x'|center(10**9) }}", "larger than 200000"),
    ("{{ 'x'|center(1000000000) }}", "larger than 200000"),
    ("{{ 'x'|indent(10**9, true) }}", "larger than 200000"),
    ("{{ 'x'.ljust(10**9) }}", "larger than 200000"),
    ("{{ 'a\tb'.expandtabs(10**9) }}", "more than 200000 characters"),
    ("{{ '{:>1000000000}'.format(1) }}", "larger than 200000"),
    ("{{ '{:>{w}}'.format(1, w=10**9) }}", "nested replacement fields"),
    ("{{ '%1000000000d' % 1 }}", "larger than 200000"),
    ("{{ '%*d'|format(10**9, 1) }}", "'*' width"),
    ("{{ '%s%s%s%s%s%s%s%s'|format(*([payload.text] * 8)) }}", "more than 200000"),
    ("{{ payload.text|wordwrap(1, wrapstring=payload.text) }}", "more than 200000"),
    ("{{ payload.text|urlize(target=payload.text) }}", "more than 200000"),
    ("{{ payload['items']|tojson(indent=10**9) }}", "larger than 16"),
    ("{{ payload['items']|tojson(indent=payload.text) }}", "larger than 16"),
    ("{{ range(10000)|join(payload.text) }}", "more than 200000 characters"),
    ("{{ [1]|batch(10**9, 'x')|list|length }}", "larger than 200000"),
    ("{{ [1]|slice(10**9)|list|length }}", "larger than 200000"),
    ("{{ lipsum(1000, max=1000) }}", "more than 200000 characters"),
    # Output that could not be stored or sent.
    ('{{ "\\x00" }}', "contains a NUL character"),
    ("{{ '%c' % 0 }}", "contains a NUL character"),
    ("{{ '%c' % 55296 }}", "lone surrogate"),
    # Output: many small pieces.
    ("{% for i in range(5000) %}{{ 'x' * 100 }}{% endfor %}", "rendered text longer than 200000"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "reason"), LONG_OR_HUGE)
def test_long_running_or_huge_renders_are_stopped_with_a_render_error(
    source: str, reason: str
) -> None:
    with pytest.raises(RenderError, match=reason.replace("*", r"\*")):
        render(source)


def test_the_deadline_stops_a_render_that_keeps_within_every_budget() -> None:
    hurried = TemplateRenderer(timeout=1e-9)
    with pytest.raises(RenderError, match="took too long"):
        render("{% for i in range(100) %}{{ i }}{% endfor %}", hurried)


def test_ordinary_templates_still_render() -> None:
    source = (
        "Hi {{ subscriber.first_name }}, code {{ payload.code }}. "
        "{% for e in payload['items'] %}{{ loop.index }}:{{ e.t }}"
        "{% if not loop.last %},{% endif %}{% endfor %} | {{ 'x' ~ 1 }} "
        "{{ '%s-%05d' % ('a', 7) }} {{ '{:>4}'.format('b') }} [{{ 'ab'|center(6) }}] "
        "{{ [1, 2]|join(',') }} {{ 2 ** 10 }} {{ 'ab' * 3 }} {{ [1] + [2] }} "
        "{{ payload.missing | default('none') }} {{ payload.text|length }} "
        "{{ subscriber|tojson }} {{ range(3)|list }} {{ 'a-b'.replace('-', '+') }} "
        "{{ (payload['items']|map(attribute='t')|join) }}"
    )
    assert render(source) == (
        "Hi Ada, code 1234. 1:x,2:x,3:x | x1 a-00007    b [  ab  ] 1,2 1024 ababab [1, 2] "
        'none 60000 {"email": "ada@example.com", "first_name": "Ada"} [0, 1, 2] a+b xxx'
    )


@pytest.mark.usefixtures("postgres_url", "redis_url")
def test_a_template_that_runs_away_fails_its_delivery_not_the_batch(
    fake_provider: FakeProviderServer,
) -> None:
    """In one batch: a delivery whose template loops for ever, one whose text could not be
    stored, and another organisation's."""
    bad, nul, good = (create_organisation(name) for name in ("Loops", "Nul", "Calm"))
    bodies = {bad: "{% for i in range(10**9) %}{% endfor %}", nul: "{{ '%c' % 0 }}", good: "Code 7"}
    for org, body in bodies.items():
        wire(fake_provider, org, names=("only",))
        subscriber(org, "ada")
        workflow(org, "w", parked(email_step(body)))
        trigger(org, "w", "ada", transaction_id="t")
    ids = open_deliveries(bad) + open_deliveries(nul) + open_deliveries(good)
    report = process_batch(ids, sending_settings())
    assert (report.sent, report.failed) == (1, 2)
    with database().session() as session:
        outcome = {
            row.organisation_id: (row.status.value, row.last_error)
            for row in session.query(Delivery).filter(Delivery.id.in_([uuid.UUID(i) for i in ids]))
        }
    assert outcome[good] == ("sent", None)
    status, reason = outcome[bad]
    assert status == "failed"
    assert reason == f"template: template loops over more than {RANGE_BUDGET} items"
    assert outcome[nul] == ("failed", "template: rendered text contains a NUL character")


@pytest.mark.usefixtures("worker")
def test_through_the_worker_runaway_templates_fail_with_a_reason_and_the_worker_goes_on(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id, names=("only",))
    subscriber(organisation_id, "ada")
    cases = {
        "loop": ("{% for i in range(10**9) %}x{% endfor %}", "loops over more than"),
        "nested": (
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
            "loops over more than",
        ),
        "huge": ("{{ 'x' * 10**9 }}", "more than 200000 characters"),
        "leak": ("{{ cycler.__init__.__globals__ }}", "SecurityError"),
    }
    for key, (body, _) in cases.items():
        workflow(organisation_id, key, [email_step(body)])
    receipts = {key: trigger(organisation_id, key, "ada") for key in cases}
    for key, (_, reason) in cases.items():
        [view] = wait_until_terminal(organisation_id, receipts[key].transaction_id)
        assert view.status == "failed", (key, view)
        assert (view.last_error or "").startswith("template: "), (key, view.last_error)
        assert reason in (view.last_error or ""), (key, view.last_error)
        assert view.attempts == 0  # nothing was sent
    workflow(organisation_id, "fine", [email_step("Code {{ payload.code }}")])
    [view] = wait_until_terminal(
        organisation_id, trigger(organisation_id, "fine", "ada", {"code": "9"}).transaction_id
    )
    assert view.status == "sent"
