"""Microsoft Graph sendMail, against Microsoft's documentation: "user: sendMail"
(https://learn.microsoft.com/en-us/graph/api/user-sendmail?view=graph-rest-1.0, v1.0, read
December 2026: the URL, the body, ``202 Accepted`` without a body), the client credentials
flow (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow:
the token request, its answer and its ``error``/``error_description`` refusals), the error
shape and codes (https://learn.microsoft.com/en-us/graph/errors) and throttling
(https://learn.microsoft.com/en-us/graph/throttling: 429 with ``Retry-After``)."""

import base64
import json
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from providers.base import Attachment, ChannelType, Message, Recipient, SendResult
from providers.errors import IntegrationError, RecipientError, RetryableError
from providers.msgraph import MsGraphProvider
from tests.providers.harness import (
    Answer,
    FakeClock,
    ProviderCase,
    ProviderContract,
    Refusal,
    check,
    send,
    send_all,
)

TENANT = "8f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8"
TOKEN_URL = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
URL = "https://graph.microsoft.com/v1.0/users/noreply@example.com/sendMail"
CREDENTIALS = {
    "tenant_id": TENANT,
    "client_id": "6731de76-14a6-49ae-97bc-6eba6914391e",
    "client_secret": "SECRET-graph-client-secret~value",
}
SETTINGS = {
    "from_email": "noreply@example.com",
    "from_name": "Example",
    "reply_to": "help@example.com",
}
MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.EMAIL,
    to=Recipient(email="ada@example.com", name="Ada Lovelace"),
    subject="Hello",
    body="Hi Ada",
    html="<p>Hi Ada</p>",
)


def access_token(name: str, roles: tuple[str, ...] = ("Mail.Send",)) -> str:
    """A token shaped like Entra's (a JWT whose ``roles`` claim lists the app permissions)."""

    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'typ': 'JWT', 'alg': 'RS256'})}.{part({'roles': list(roles), 'n': name})}.sig"


ACCESS_TOKEN = access_token("first")


def token_answer(value: str = ACCESS_TOKEN, expires_in: int = 3599) -> httpx.Response:
    return httpx.Response(
        200,
        json={"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in,
              "access_token": value},
    )  # fmt: skip


def token_route(router: respx.MockRouter) -> None:
    router.post(TOKEN_URL).mock(return_value=token_answer())


def graph_error(status: int, code: str, message: str, **headers: str) -> Answer:
    """Graph's documented error shape."""
    return Answer(status, json={"error": {"code": code, "message": message}}, headers=headers)


def check_request(request: httpx.Request) -> None:
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "message": {
            "subject": "Hello",
            "body": {"contentType": "HTML", "content": "<p>Hi Ada</p>"},
            "from": {"emailAddress": {"address": "noreply@example.com", "name": "Example"}},
            "toRecipients": [{"emailAddress": {"address": "ada@example.com", "name": "Ada Lovelace"}}],
            "replyTo": [{"emailAddress": {"address": "help@example.com"}}],
        },
        "saveToSentItems": False,
    }  # fmt: skip


REFUSALS = (
    Refusal(graph_error(403, "ErrorAccessDenied", "Access is denied."), IntegrationError,
            "ErrorAccessDenied"),
    Refusal(graph_error(403, "ErrorSendAsDenied", "The user account which was used to submit "
                        "this request does not have the right to send mail on behalf of the "
                        "specified sending account."), IntegrationError, "ErrorSendAsDenied"),
    Refusal(graph_error(404, "ErrorInvalidUser", "The requested user is invalid."),
            IntegrationError),
    Refusal(graph_error(404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, "
                        "soft-deleted, or is hosted on-premise."), IntegrationError),
    Refusal(graph_error(413, "ErrorMessageSizeExceeded", "The message exceeds the maximum "
                        "supported size."), RecipientError),
    Refusal(graph_error(400, "ErrorInvalidRecipients", "At least one recipient isn't valid."),
            RecipientError, "ErrorInvalidRecipients"),
    Refusal(graph_error(503, "ServiceNotAvailable", "Service unavailable.",
                        **{"Retry-After": "3"}), RetryableError),
    Refusal(graph_error(504, "UnknownError", ""), RetryableError),
)  # fmt: skip


class TestMsGraph(ProviderContract):
    case = ProviderCase(
        provider=MsGraphProvider,
        credentials=CREDENTIALS,
        settings=SETTINGS,
        message=MESSAGE,
        method="POST",
        url=URL,
        success=Answer(202),
        expected_message_id=None,
        check_request=check_request,
        extra_routes=token_route,
        # A 401 that persists with a fresh token: the app is at fault.
        bad_credentials=graph_error(
            401, "InvalidAuthenticationToken", "Access token validation failure."
        ),
        invalid_recipient=graph_error(
            400, "ErrorInvalidRecipients", "At least one recipient isn't valid."
        ),
        required_credential="client_secret",
        rate_limited=graph_error(
            429,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
            **{"Retry-After": "7"},
        ),
        derived_secrets=(ACCESS_TOKEN,),
        refusals=REFUSALS,
    )


def _sent() -> httpx.Response:
    return httpx.Response(202)


def test_the_token_request_is_the_client_credentials_grant_for_graph() -> None:
    runs = send_all(
        TestMsGraph.case,
        [MESSAGE],
        [_sent()],
        provider=MsGraphProvider(),
        routes={TOKEN_URL: [token_answer()]},
    )
    assert runs.outcomes == [SendResult(provider_message_id=None, status_code=202)]
    request = runs.routes[TOKEN_URL].calls[0].request
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "client_id": ["6731de76-14a6-49ae-97bc-6eba6914391e"],
        "client_secret": ["SECRET-graph-client-secret~value"],
        "scope": ["https://graph.microsoft.com/.default"],
        "grant_type": ["client_credentials"],
    }


def test_the_token_is_cached_and_refreshed_before_it_expires() -> None:
    clock = FakeClock()
    provider = MsGraphProvider(clock=clock)
    first, second = access_token("first"), access_token("second")
    runs = send_all(
        TestMsGraph.case,
        [MESSAGE, MESSAGE],
        [_sent(), _sent()],
        provider=provider,
        routes={TOKEN_URL: [token_answer(first, 3600)]},
        clock=clock,
        advance=600,
    )
    assert runs.routes[TOKEN_URL].call_count == 1
    assert [call.request.headers["authorization"] for call in runs.route.calls] == [
        f"Bearer {first}",
        f"Bearer {first}",
    ]
    # 3600 s token, refreshed 300 s early: 1200 s have passed, 2100 more reach the margin.
    clock.now += 2100 + 1
    runs = send_all(
        TestMsGraph.case,
        [MESSAGE],
        [_sent()],
        provider=provider,
        routes={TOKEN_URL: [token_answer(second, 3600)]},
    )
    assert runs.routes[TOKEN_URL].call_count == 1
    assert runs.route.calls[0].request.headers["authorization"] == f"Bearer {second}"


def test_a_401_fetches_a_new_token_and_tries_once_more() -> None:
    revoked, fresh = access_token("revoked"), access_token("fresh")
    unauthorized = graph_error(401, "InvalidAuthenticationToken", "Lifetime validation failed.")
    runs = send_all(
        TestMsGraph.case,
        [MESSAGE],
        [unauthorized.response(), _sent()],
        provider=MsGraphProvider(),
        routes={TOKEN_URL: [token_answer(revoked), token_answer(fresh)]},
    )
    assert runs.outcomes == [SendResult(provider_message_id=None, status_code=202)]
    assert [call.request.headers["authorization"] for call in runs.route.calls] == [
        f"Bearer {revoked}",
        f"Bearer {fresh}",
    ]


def test_a_401_twice_is_an_integration_error_after_exactly_two_sends() -> None:
    unauthorized = graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
    outcome = send(TestMsGraph.case, unauthorized)
    assert type(outcome.error) is IntegrationError
    assert outcome.error.provider_code == "InvalidAuthenticationToken"
    assert len(outcome.requests) == 2


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [(400, "invalid_client", IntegrationError), (401, "invalid_client", IntegrationError),
     (400, "unauthorized_client", IntegrationError), (503, "temporarily_unavailable",
     RetryableError)],
)  # fmt: skip
def test_a_refused_token_request_sends_nothing(
    status: int, code: str, expected: type[Exception]
) -> None:
    refused = httpx.Response(
        status,
        json={"error": code, "error_description": "AADSTS7000215: Invalid client secret provided."},
    )
    runs = send_all(
        TestMsGraph.case, [MESSAGE], [_sent()], provider=MsGraphProvider(),
        routes={TOKEN_URL: [refused]},
    )  # fmt: skip
    assert type(runs.outcomes[0]) is expected
    assert runs.route.call_count == 0
    assert "SECRET" not in str(runs.outcomes[0])


def test_text_only_and_attachments_in_graphs_shape() -> None:
    message = MESSAGE.model_copy(
        update={
            "html": None,
            "attachments": (
                Attachment(filename="a.pdf", content_type="application/pdf", content=b"%PDF"),
            ),
        }
    )
    outcome = send(
        TestMsGraph.case,
        Answer(202),
        message=message,
        settings={"from_email": "noreply@example.com", "save_to_sent_items": True},
    )
    body = json.loads(outcome.request.content)
    assert body["saveToSentItems"] is True
    assert body["message"]["body"] == {"contentType": "Text", "content": "Hi Ada"}
    assert body["message"]["from"] == {"emailAddress": {"address": "noreply@example.com"}}
    assert body["message"]["attachments"] == [
        {
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": "a.pdf",
            "contentType": "application/pdf",
            "contentBytes": base64.b64encode(b"%PDF").decode(),
        }
    ]


def test_the_sender_cannot_change_the_path() -> None:
    url = "https://graph.microsoft.com/v1.0/users/a%2F..%2Fme@example.com/sendMail"
    outcome = send(
        TestMsGraph.case, Answer(202), settings={"from_email": "a/../me@example.com"}, url=url
    )
    assert outcome.request.url.raw_path == b"/v1.0/users/a%2F..%2Fme@example.com/sendMail"


def test_the_tenant_id_cannot_change_the_token_url() -> None:
    with pytest.raises(ValueError, match="tenant_id"):
        MsGraphProvider.parse_credentials({**CREDENTIALS, "tenant_id": "x/../y"})


@pytest.mark.parametrize(
    ("token", "ok", "detail"),
    [
        (ACCESS_TOKEN, True, "Mail.Send permission"),
        (access_token("no-mail", roles=("User.Read.All",)), False, "lacks the Mail.Send"),
    ],
)
def test_check_obtains_a_token_and_reads_its_permissions(token: str, ok: bool, detail: str) -> None:
    result, _ = check(TestMsGraph.case, token_answer(token), url=TOKEN_URL, method="POST")
    assert result.ok is ok
    assert detail in result.detail
