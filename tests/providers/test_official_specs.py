"""Contract tests: the request each provider builds, checked against the provider's own API document.

The documents (OpenAPI, or for SES the AWS service model and for FCM Google's discovery document)
are read where they lie: ``$DISPATCHER_PROVIDER_SPECS``, else ``<project root>/../shared/specs``;
they are never copied into the repository. Without the folder the tests skip, and under CI they
fail. Each provider's real ``send()`` runs against ``httpx.MockTransport``, which keeps the request
and answers with the provider's documented success (the answers and messages are those of the
provider's own test module): with the test module's message, with that message bare (no subject,
title or HTML, as a template may render it) and, where the provider takes files, with a file.

* OpenAPI 3.0/3.1 documents are checked by openapi-core: the server and path (the request's URL
  must be an operation's path under one of the document's servers), the method, the security
  requirement (the auth header), the parameters, the content type and the body's schema.
* Four documents are not OpenAPI 3, and each gets a small checker here: SES's service model
  (SendEmail's method and ``requestUri``, SigV4 for the model's signing name, the body against the
  input shapes), FCM's discovery document (``messages.send``'s method and path, the OAuth scope,
  the body against its schemas), Slack's Swagger 2.0 document (openapi-core reads OpenAPI 3 only)
  and Telegram's unofficial scrape of the Bot API page.

Where a document is wrong, or says something the validator cannot read, the workaround is narrow
and its comment says why: Postmark's scheme-relative server, OneSignal's auth scheme, Mailgun's
file parts, Discord's ``payload_json``, Slack's token header and FCM's enum spelling.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from providers.base import Attachment, Message
from providers.fcm import FCM_SCOPE
from tests.conftest import service_missing
from tests.providers import (
    test_brevo,
    test_discord,
    test_fcm,
    test_mailgun,
    test_onesignal,
    test_postmark,
    test_resend,
    test_sendgrid,
    test_ses,
    test_slack,
    test_telegram,
    test_telnyx,
    test_twilio,
    test_vonage,
)
from tests.providers.harness import ProviderCase, form_parts, run

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SPECS_ENV = "DISPATCHER_PROVIDER_SPECS"


def specs_dir() -> Path:
    configured = os.environ.get(SPECS_ENV)
    return Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "specs"


@pytest.fixture(scope="module", autouse=True)
def documents_folder() -> Path:
    folder = specs_dir()
    if not folder.is_dir():
        service_missing(
            "the folder of provider API documents",
            FileNotFoundError(f"no folder {folder}; set {SPECS_ENV} to where they lie"),
        )
    return folder


@functools.cache
def document(name: str) -> dict[str, Any]:
    """``name``'s document, read and parsed once per run (Discord's is 7,000 lines)."""
    for suffix in (".json", ".yaml", ".yml"):
        path = specs_dir() / f"{name}{suffix}"
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            loaded = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
            assert isinstance(loaded, dict), f"{path} is not a JSON/YAML object"
            return loaded
    raise FileNotFoundError(f"no document {name}.json/.yaml/.yml in {specs_dir()}")


# -- the requests the providers build ----------------------------------------------------------

ATTACHMENT = Attachment(
    filename="report.pdf", content_type="application/pdf", content=b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
)


@dataclass(frozen=True)
class Contract:
    #: The document's file name without its suffix.
    document: str
    case: ProviderCase
    check: Callable[[str, httpx.Request], None]
    #: Answers to requests a send makes besides the checked one (an OAuth token), by URL.
    other_answers: Mapping[str, Callable[[], httpx.Response]] = field(default_factory=dict)


def built_request(contract: Contract, message: Message) -> httpx.Request:
    """The one request ``send()`` makes for ``message`` (others answered from the contract)."""
    case = contract.case
    seen: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        other = contract.other_answers.get(str(request.url.copy_with(query=None)))
        if other is not None:
            return other()
        seen.append(request)
        return case.success.response()

    provider = case.provider()

    async def go() -> None:
        transport = httpx.MockTransport(server)
        async with httpx.AsyncClient(transport=transport, timeout=5.0) as client:
            await provider.send(
                message,
                provider.parse_credentials(case.credentials),
                provider.parse_settings(case.settings),
                client,
            )

    run(go())
    assert len(seen) == 1, f"expected one request, got {len(seen)}"
    return seen[0]


def media_type(request: httpx.Request) -> str:
    return str(request.headers.get("content-type", "")).partition(";")[0].strip().lower()


def json_body(request: httpx.Request) -> Any:
    assert media_type(request) == "application/json", request.headers.get("content-type")
    return json.loads(request.content)


# -- OpenAPI 3 documents, by openapi-core --------------------------------------------------------


class OpenAPIRequest:
    """An ``httpx.Request`` seen through openapi-core's ``Request`` protocol."""

    def __init__(self, request: httpx.Request) -> None:
        self._request = request
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(list(request.headers.multi_items())),
            cookie=ImmutableMultiDict(),
        )

    @property
    def host_url(self) -> str:
        url = self._request.url
        return f"{url.scheme}://{url.netloc.decode('ascii')}"

    @property
    def path(self) -> str:
        return self._request.url.path

    @property
    def method(self) -> str:
        return self._request.method.lower()

    @property
    def body(self) -> bytes | None:
        return self._request.content

    @property
    def content_type(self) -> str:
        return str(self._request.headers.get("content-type", ""))


def _postmark(spec: dict[str, Any]) -> None:
    # The copy was converted from Swagger 2.0 without its ``schemes``, which left the
    # scheme-relative server ``//api.postmarkapp.com/`` that no request URL can match. Postmark's
    # API is HTTPS only.
    spec["servers"] = [
        {**server, "url": f"https:{server['url']}"} if server["url"].startswith("//") else server
        for server in spec["servers"]
    ]


def _onesignal(spec: dict[str, Any]) -> None:
    # The document declares ``rest_api_key`` as ``http`` ``bearer``, but OneSignal's API reference
    # and the Go client generated from this very document send ``Authorization: Key <REST API
    # key>``; an ``http`` scheme is the word before the credentials, so name it ``Key``.
    spec["components"]["securitySchemes"]["rest_api_key"]["scheme"] = "key"


def _binary_as_openapi_31(schema: Any) -> None:
    """Rewrite OpenAPI 3.0's ``type: string, format: binary`` to 3.1's untyped binary schema."""
    if isinstance(schema, dict):
        if schema.get("type") == "string" and schema.get("format") == "binary":
            del schema["type"], schema["format"]
            schema["contentMediaType"] = "application/octet-stream"
        for value in schema.values():
            _binary_as_openapi_31(value)
    elif isinstance(schema, list):
        for value in schema:
            _binary_as_openapi_31(value)


def _mailgun(spec: dict[str, Any]) -> None:
    # An OpenAPI 3.1 document that describes the ``attachment`` files in 3.0's words, ``type:
    # string, format: binary``. In 3.1 (JSON Schema) a string is text, so raw file bytes never
    # match it; 3.1 writes an unencoded file as a schema without a type.
    _binary_as_openapi_31(spec["components"]["schemas"])


#: Narrow corrections of a document, applied to its parsed copy before openapi-core reads it.
CORRECTIONS: Mapping[str, Callable[[dict[str, Any]], None]] = {
    "mailgun": _mailgun,
    "onesignal": _onesignal,
    "postmark": _postmark,
}


@functools.cache
def openapi(name: str) -> OpenAPI:
    spec = copy.deepcopy(document(name))  # a private copy to correct
    correct = CORRECTIONS.get(name)
    if correct is not None:
        correct(spec)
    return OpenAPI.from_dict(spec)


def _schema_lines(schema_error: Any, depth: int = 1) -> Iterator[str]:
    """A JSON Schema error and, for ``anyOf``/``oneOf``, why each alternative failed."""
    where = "/".join(str(step) for step in schema_error.absolute_path)
    yield f"{'  ' * depth}at /{where}: {schema_error.message}"[:300]
    for alternative in schema_error.context or ():
        yield from _schema_lines(alternative, depth + 1)


def _error_lines(error: BaseException) -> Iterator[str]:
    yield f"{type(error).__name__}: {error}"[:300]
    causes = {id(cause): cause for cause in (error.__cause__, error.__context__) if cause}
    for cause in causes.values():
        for schema_error in getattr(cause, "schema_errors", None) or ():
            yield from _schema_lines(schema_error)


def check_openapi(name: str, request: httpx.Request) -> None:
    errors = list(openapi(name).iter_request_errors(OpenAPIRequest(request)))
    assert not errors, "\n".join(line for error in errors for line in _error_lines(error))


def check_discord(name: str, request: httpx.Request) -> None:
    if media_type(request) != "multipart/form-data":
        check_openapi(name, request)
        return
    # The document gives the multipart body the JSON body's schema, but Discord's multipart form
    # carries that JSON in its ``payload_json`` part beside the ``files[n]`` parts: check the JSON
    # as the JSON body it stands for, and that every file is listed in ``attachments`` by its n.
    parts = form_parts(request)
    payloads = [part for part in parts if part.name == "payload_json"]
    assert len(payloads) == 1, [part.name for part in parts]
    payload = json.loads(payloads[0].content)
    headers = {
        name: value
        for name, value in request.headers.items()
        if name not in ("content-type", "content-length")
    }
    check_openapi(name, httpx.Request(request.method, request.url, headers=headers, json=payload))
    files = [part.name for part in parts if part.filename is not None]
    ids = [item["id"] for item in payload.get("attachments", [])]
    assert files == [f"files[{id_}]" for id_ in ids]


# -- SES: the AWS service model --------------------------------------------------------------------


def shape_errors(shapes: Mapping[str, Any], name: str, value: Any, where: str) -> Iterator[str]:
    """Where ``value`` breaks the service model's shape ``name`` (rest-json body rules)."""
    shape = shapes[name]
    kind = shape["type"]
    if kind == "structure":
        if not isinstance(value, dict):
            yield f"{where}: {name} is an object, not {value!r}"
            return
        members = shape.get("members", {})
        for key in sorted(set(value) - set(members)):
            yield f"{where}: {name} has no member {key!r}"
        for key in shape.get("required", []):
            if key not in value:
                yield f"{where}: {name} requires {key!r}"
        for key in sorted(set(value) & set(members)):
            member = members[key]
            if member.get("location"):
                yield f"{where}.{key}: goes in the {member['location']}, not the body"
            yield from shape_errors(shapes, member["shape"], value[key], f"{where}.{key}")
    elif kind == "list":
        if not isinstance(value, list):
            yield f"{where}: {name} is a list, not {value!r}"
            return
        if not shape.get("min", 0) <= len(value) <= shape.get("max", len(value)):
            yield f"{where}: {name} takes {shape.get('min', 0)}..{shape.get('max')} items"
        for index, item in enumerate(value):
            yield from shape_errors(shapes, shape["member"]["shape"], item, f"{where}[{index}]")
    elif kind == "map":
        if not isinstance(value, dict):
            yield f"{where}: {name} is a map, not {value!r}"
            return
        for key, item in value.items():
            yield from shape_errors(shapes, shape["key"]["shape"], key, f"{where} key")
            yield from shape_errors(shapes, shape["value"]["shape"], item, f"{where}.{key}")
    elif kind == "string":
        if not isinstance(value, str):
            yield f"{where}: {name} is a string, not {value!r}"
        elif "enum" in shape and value not in shape["enum"]:
            yield f"{where}: {value!r} is not one of {name}'s {shape['enum']}"
        elif not shape.get("min", 0) <= len(value) <= shape.get("max", len(value)):
            yield f"{where}: {name} takes {shape.get('min', 0)}..{shape.get('max')} characters"
    elif kind == "blob":
        # A blob travels in a JSON body as base64 text.
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            yield f"{where}: {name} is base64 text, not {value!r}"
    elif kind == "boolean":
        if not isinstance(value, bool):
            yield f"{where}: {name} is a boolean, not {value!r}"
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            yield f"{where}: {name} is an integer, not {value!r}"
    elif kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            yield f"{where}: {name} is a number, not {value!r}"
    else:
        yield f"{where}: shape type {kind!r} of {name} is not checked here"


def check_ses(name: str, request: httpx.Request) -> None:
    model = document(name)
    metadata = model["metadata"]
    operation = model["operations"]["SendEmail"]
    assert metadata["protocol"] == "rest-json"
    assert request.method == operation["http"]["method"]
    assert request.url.scheme == "https"
    assert re.fullmatch(
        rf"{metadata['endpointPrefix']}\.[a-z0-9-]+\.amazonaws\.com", request.url.host
    )
    assert request.url.path == operation["http"]["requestUri"]
    assert metadata["signatureVersion"] == "v4"
    credential = re.match(
        r"AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9]+)/aws4_request, ",
        request.headers["authorization"],
    )
    assert credential is not None, "not a SigV4 authorization"
    assert credential[2] == metadata["signingName"]
    assert f"email.{credential[1]}.amazonaws.com" == request.url.host
    errors = list(
        shape_errors(model["shapes"], operation["input"]["shape"], json_body(request), "$")
    )
    assert not errors, "\n".join(errors)


# -- FCM: Google's discovery document --------------------------------------------------------------


def schema_errors(
    schemas: Mapping[str, Any], schema: Mapping[str, Any], value: Any, where: str
) -> Iterator[str]:
    """Where ``value`` breaks a discovery document's ``schema``."""
    if "$ref" in schema:
        yield from schema_errors(schemas, schemas[schema["$ref"]], value, where)
        return
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            yield f"{where}: an object, not {value!r}"
            return
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                yield from schema_errors(schemas, properties[key], item, f"{where}.{key}")
            elif extra is not None:
                yield from schema_errors(schemas, extra, item, f"{where}.{key}")
            else:
                yield f"{where}: no field {key!r} (the schema has {sorted(properties)})"
    elif kind == "array":
        if not isinstance(value, list):
            yield f"{where}: an array, not {value!r}"
            return
        for index, item in enumerate(value):
            yield from schema_errors(schemas, schema["items"], item, f"{where}[{index}]")
    elif kind == "string":
        # int64, durations and timestamps are strings too in a discovery document.
        if not isinstance(value, str):
            yield f"{where}: a string, not {value!r}"
        # The enums list the proto names (``HIGH``), but the descriptions and Firebase's guides
        # give the lowercase spelling (``"priority": "high"``), which the API's JSON parser
        # accepts: compare without case.
        elif "enum" in schema and value.upper() not in {name.upper() for name in schema["enum"]}:
            yield f"{where}: {value!r} is not one of {schema['enum']}"
    elif kind == "boolean":
        if not isinstance(value, bool):
            yield f"{where}: a boolean, not {value!r}"
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            yield f"{where}: an integer, not {value!r}"
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            yield f"{where}: a number, not {value!r}"
    elif kind != "any":
        yield f"{where}: schema type {kind!r} is not checked here"


def discovery_path(method: Mapping[str, Any]) -> re.Pattern[str]:
    """A method's ``path`` template (``v1/{+parent}/messages:send``) as a regex of its URL path."""

    def parameter(match: re.Match[str]) -> str:
        pattern = method["parameters"][match[1]].get("pattern", "^[^/]+$")
        return f"(?:{pattern.removeprefix('^').removesuffix('$')})"

    pieces = re.split(r"(\{\+?[A-Za-z_]+\})", method["path"])
    return re.compile(
        "".join(
            re.sub(r"\{\+?([A-Za-z_]+)\}", parameter, piece)
            if piece.startswith("{")
            else re.escape(piece)
            for piece in pieces
        )
    )


def check_fcm(name: str, request: httpx.Request) -> None:
    discovery = document(name)
    method = discovery["resources"]["projects"]["resources"]["messages"]["methods"]["send"]
    root = httpx.URL(discovery["rootUrl"] + discovery["servicePath"])
    assert request.method == method["httpMethod"]
    assert (request.url.scheme, request.url.host) == (root.scheme, root.host)
    relative = request.url.path.removeprefix(root.path)
    assert discovery_path(method).fullmatch(relative), f"{relative} is not {method['path']}"
    assert FCM_SCOPE in method["scopes"]
    assert re.fullmatch(r"Bearer \S+", request.headers["authorization"])
    errors = list(schema_errors(discovery["schemas"], method["request"], json_body(request), "$"))
    assert not errors, "\n".join(errors)


# -- Slack: a Swagger 2.0 document ---------------------------------------------------------------

#: Arguments Slack's form encoding takes as JSON text ("a JSON-based array ... presented as a
#: URL-encoded string"); a JSON body takes them as the arrays themselves.
SLACK_JSON_ARGUMENTS = frozenset({"attachments", "blocks"})


def check_slack(name: str, request: httpx.Request) -> None:
    swagger = document(name)
    assert swagger["swagger"] == "2.0"
    method = request.url.path.removeprefix(swagger["basePath"])
    operation = swagger["paths"][method][request.method.lower()]
    assert request.url.scheme in swagger["schemes"]
    assert request.url.host == swagger["host"]
    assert media_type(request) in operation["consumes"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    # The document wants the token in a ``token`` header, which Slack does not read: its docs
    # take the token as ``Authorization: Bearer``, the only way a JSON body can carry it.
    assert parameters["token"]["in"] == "header"
    assert re.fullmatch(r"Bearer \S+", request.headers["authorization"])
    fields = {key: value for key, value in parameters.items() if value["in"] == "formData"}
    body = json_body(request)
    errors = [f"no argument {key!r}" for key in sorted(set(body) - set(fields))]
    errors += [
        f"{key!r} is required"
        for key, value in fields.items()
        if value.get("required") and key not in body
    ]
    types = {"string": (str,), "boolean": (bool,)}
    for key in set(body) & set(fields):
        allowed = types[fields[key]["type"]] + ((list,) if key in SLACK_JSON_ARGUMENTS else ())
        if not isinstance(body[key], allowed):
            errors.append(f"{key!r} is a {fields[key]['type']}, not {body[key]!r}")
    assert not errors, "\n".join(errors)


# -- Telegram: an unofficial scrape of the Bot API page ----------------------------------------------


#: The Bot API's scalar types, as checks of a JSON value.
TELEGRAM_SCALARS: Mapping[str, Callable[[Any], bool]] = {
    "String": lambda value: isinstance(value, str),
    "Integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "Float": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    "Boolean": lambda value: isinstance(value, bool),
    "True": lambda value: value is True,
}


def telegram_errors(api: Mapping[str, Any], types: list[str], value: Any, where: str) -> list[str]:
    """Why ``value`` is none of the Bot API ``types``; empty when it is one of them."""
    attempts = [telegram_type_errors(api, name, value, where) for name in types]
    if any(not attempt for attempt in attempts):
        return []
    return [problem for attempt in attempts for problem in attempt]


def telegram_type_errors(api: Mapping[str, Any], name: str, value: Any, where: str) -> list[str]:
    """Where ``value`` breaks the Bot API type ``name``; empty when it is one."""
    if name.startswith("Array of "):
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not {name}"]
        item_type = [name.removeprefix("Array of ")]
        return [
            problem
            for index, item in enumerate(value)
            for problem in telegram_errors(api, item_type, item, f"{where}[{index}]")
        ]
    if name in TELEGRAM_SCALARS:
        return [] if TELEGRAM_SCALARS[name](value) else [f"{where}: {value!r} is not {name}"]
    described = api["types"].get(name)
    if described is None:
        return [f"{where}: the document has no type {name}"]
    if described.get("subtypes"):
        return telegram_errors(api, described["subtypes"], value, where)
    if not isinstance(value, dict):
        return [f"{where}: {value!r} is not a {name} object"]
    return telegram_field_errors(api, name, described.get("fields", []), value, where)


def telegram_field_errors(
    api: Mapping[str, Any],
    owner: str,
    declared: list[dict[str, Any]],
    value: dict[str, Any],
    where: str,
) -> list[str]:
    """Where the object ``value`` breaks the ``declared`` fields of ``owner`` (a method or type)."""
    fields = {item["name"]: item for item in declared}
    problems = [f"{where}: {owner} has no field {key!r}" for key in value if key not in fields]
    problems += [
        f"{where}: {owner} requires {key!r}"
        for key, item in fields.items()
        if item["required"] and key not in value
    ]
    for key in sorted(set(value) & set(fields)):
        problems += telegram_errors(api, fields[key]["types"], value[key], f"{where}.{key}")
    return problems


def check_telegram(name: str, request: httpx.Request) -> None:
    api = document(name)
    # The scrape has no server; the Bot API page's "Making requests" gives
    # ``https://api.telegram.org/bot<token>/METHOD_NAME`` and takes application/json bodies.
    assert request.url.scheme == "https"
    assert request.url.host == "api.telegram.org"
    match = re.fullmatch(r"/bot\d+:[A-Za-z0-9_-]+/([A-Za-z]+)", request.url.path)
    assert match is not None, "not a /bot<token>/<method> path"
    assert request.method == "POST"
    method = api["methods"][match[1]]
    errors = telegram_field_errors(api, match[1], method["fields"], json_body(request), "$")
    assert not errors, "\n".join(errors)


# -- the table -------------------------------------------------------------------------------------

CONTRACTS = (
    Contract("brevo", test_brevo.TestBrevo.case, check_openapi),
    Contract("discord", test_discord.TestDiscord.case, check_discord),
    Contract(
        "fcm",
        test_fcm.TestFcm.case,
        check_fcm,
        other_answers={test_fcm.TOKEN_URI: test_fcm.token_answer},
    ),
    Contract("mailgun", test_mailgun.TestMailgun.case, check_openapi),
    Contract("onesignal", test_onesignal.TestOneSignal.case, check_openapi),
    Contract("postmark", test_postmark.TestPostmark.case, check_openapi),
    Contract("resend", test_resend.TestResend.case, check_openapi),
    Contract("sendgrid", test_sendgrid.TestSendGrid.case, check_openapi),
    Contract("ses", test_ses.TestSes.case, check_ses),
    Contract("slack", test_slack.TestSlack.case, check_slack),
    Contract("telegram", test_telegram.TestTelegram.case, check_telegram),
    Contract("telnyx", test_telnyx.TestTelnyx.case, check_openapi),
    Contract("twilio", test_twilio.TestTwilio.case, check_openapi),
    Contract("vonage", test_vonage.TestVonage.case, check_openapi),
)


def _variants() -> Iterator[Any]:
    for contract in CONTRACTS:
        message = contract.case.message
        yield pytest.param(contract, message, id=contract.document)
        # A template may render no subject, title or HTML part.
        bare = message.model_copy(update={"subject": None, "title": None, "html": None})
        yield pytest.param(contract, bare, id=f"{contract.document}-bare")
        if contract.case.provider.max_attachments:
            with_file = message.model_copy(update={"attachments": (ATTACHMENT,)})
            yield pytest.param(contract, with_file, id=f"{contract.document}-attachment")


@pytest.mark.parametrize(("contract", "message"), list(_variants()))
def test_built_request_matches_the_official_document(contract: Contract, message: Message) -> None:
    contract.check(contract.document, built_request(contract, message))


def test_every_document_in_the_folder_has_a_contract(documents_folder: Path) -> None:
    names = {
        path.stem
        for path in documents_folder.iterdir()
        if path.suffix in (".json", ".yaml", ".yml")
    }
    assert names == {contract.document for contract in CONTRACTS}
    for name in names:
        assert (documents_folder / f"{name}.source").is_file(), f"{name} has no .source"
