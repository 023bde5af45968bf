"""Templates nested too deeply are a field-named error wherever they arrive (the producer, the
worker, the renderer), never a RecursionError: Jinja's parser and compiler recurse per level."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from dispatcher import ActionArgumentsError, Err, ErrorCode, run_action
from dispatcher.sending.rendering import (
    MAX_TEMPLATE_NESTING,
    RenderError,
    TemplateRenderer,
    check_nesting,
    compile_template,
    required_payload_keys,
)
from tests.dispatcher.support import raw_on_worker

DEEP_TEMPLATES = {
    "parentheses": "{{ " + "(" * 300 + "1" + ")" * 300 + " }}",
    "brackets": "{{ " + "[" * 300 + "]" * 300 + " }}",
    "blocks": "{% if a %}" * 300 + "x" + "{% endif %}" * 300,
    "operators": "{{ a" + " + a" * 3000 + " }}",
    "filters": "{{ a" + "|upper" * 3000 + " }}",
}


def workflow_arguments(body: str) -> dict[str, Any]:
    return {
        "key": f"deep-{uuid.uuid4().hex[:6]}",
        "name": "Deep",
        "steps": [{"kind": "email", "template": {"subject": "s", "body": body}}],
    }


@pytest.mark.parametrize("body", DEEP_TEMPLATES.values(), ids=DEEP_TEMPLATES.keys())
def test_compile_template_refuses_with_a_syntax_error(body: str) -> None:
    with pytest.raises(TemplateSyntaxError, match="nest"):
        compile_template(SandboxedEnvironment(), body)


@pytest.mark.parametrize(
    ("depth", "refused"), [(MAX_TEMPLATE_NESTING, False), (MAX_TEMPLATE_NESTING + 1, True)]
)
def test_the_nesting_bound(depth: int, refused: bool) -> None:
    body = "{{ " + "(" * depth + "1" + ")" * depth + " }}"
    if refused:
        with pytest.raises(TemplateSyntaxError, match=f"deeper than {MAX_TEMPLATE_NESTING}"):
            check_nesting(SandboxedEnvironment(), body)
    else:
        check_nesting(SandboxedEnvironment(), body)
        assert TemplateRenderer().render(body, {}) == "1"


def test_blocks_count_as_nesting_and_closing_them_unnests() -> None:
    flat = "{% if a %}x{% endif %}" * 500  # many blocks, none nested
    check_nesting(SandboxedEnvironment(), flat)
    nested = "{% for i in x %}" * 65 + "{% endfor %}" * 65
    with pytest.raises(TemplateSyntaxError):
        check_nesting(SandboxedEnvironment(), nested)


@pytest.mark.parametrize("body", DEEP_TEMPLATES.values(), ids=DEEP_TEMPLATES.keys())
def test_the_renderer_fails_the_delivery_with_a_reason(body: str) -> None:
    with pytest.raises(RenderError, match="TemplateSyntaxError: the template"):
        TemplateRenderer().render(body, {"a": 1})


def test_required_payload_keys_refuses_instead_of_recursing() -> None:
    with pytest.raises(TemplateSyntaxError):
        required_payload_keys([DEEP_TEMPLATES["parentheses"]])


@pytest.mark.usefixtures("postgres_url")
@pytest.mark.parametrize("body", DEEP_TEMPLATES.values(), ids=DEEP_TEMPLATES.keys())
def test_create_workflow_names_the_field_in_the_producer(
    body: str, organisation_id: uuid.UUID
) -> None:
    with pytest.raises(ActionArgumentsError) as caught:
        run_action("create_workflow", workflow_arguments(body), organisation_id=organisation_id)
    errors = {error["field"]: error["message"] for error in caught.value.errors}
    assert list(errors) == ["steps.0.template.body"]
    assert "template syntax error on line 1: the template" in errors["steps.0.template.body"]


@pytest.mark.worker
@pytest.mark.usefixtures("worker")
def test_create_workflow_names_the_field_on_the_worker(organisation_id: uuid.UUID) -> None:
    result = raw_on_worker(
        "create_workflow", organisation_id, workflow_arguments(DEEP_TEMPLATES["parentheses"])
    )
    assert isinstance(result, Err)
    assert result.code is ErrorCode.INVALID_ARGS
    assert "steps.0.template" in str(result.details)
