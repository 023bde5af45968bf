"""JSON options: a syntax error, a non-object and absurd nesting are one-line errors naming the
option, never a traceback (``json.loads`` raises RecursionError around 1,000 levels)."""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner

from dispatcher.cli.main import main
from dispatcher.organisations import create_organisation

DEEP = "[" * 10_000 + "]" * 10_000
DEEP_OBJECT = '{"a": ' * 10_000 + "1" + "}" * 10_000

pytestmark = pytest.mark.usefixtures("postgres_url")


def commands(organisation: str, value: str) -> dict[str, list[str]]:
    return {
        "--payload": ["trigger", "w", "--org", organisation, "--to", "ada", "--payload", value],
        "--args": ["action", "create_user", "--org", organisation, "--args", value],
        "--credentials": [
            "integrations", "add", "--org", organisation, "--provider", "fake", "--name", "n",
            "--credentials", value,
        ],
        "--settings": [
            "integrations", "add", "--org", organisation, "--provider", "fake", "--name", "n",
            "--credentials", '{"api_key": "k"}', "--settings", value,
        ],
    }  # fmt: skip


@pytest.mark.parametrize("option", ["--payload", "--args", "--credentials", "--settings"])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (DEEP, "is nested too deeply"),
        (DEEP_OBJECT, "is nested too deeply"),
        ('{"a": ', "is not valid JSON: Expecting value at line 1 column 7"),
        ("[1, 2]", "must be a JSON object"),
    ],
    ids=["deep-array", "deep-object", "syntax", "not-an-object"],
)
def test_a_bad_json_option_is_a_one_line_error(option: str, value: str, message: str) -> None:
    organisation = str(create_organisation(f"Json {uuid.uuid4().hex[:6]}"))
    outcome = CliRunner().invoke(main, commands(organisation, value)[option])
    assert outcome.exit_code == 1, outcome.output
    assert outcome.output.strip() == f"Error: {option} {message}"
    assert not isinstance(outcome.exception, RecursionError)
