import json

import httpx

from providers.base import ChannelType, Message, Recipient
from providers.fake import FakeHttpProvider
from tests.providers.harness import Answer, ProviderCase, ProviderContract

URL = "http://127.0.0.1:9/send"


def check_request(request: httpx.Request) -> None:
    assert request.headers["authorization"] == "Bearer SECRET-fake-key"
    assert request.headers["idempotency-key"] == "dlv-d-1"
    body = json.loads(request.content)
    assert body["delivery_id"] == "d-1"
    assert body["to"] == {"email": "ada@example.com"}
    assert body["subject"] == "Hello"


class TestFakeHttp(ProviderContract):
    case = ProviderCase(
        provider=FakeHttpProvider,
        idempotency_key=lambda request: request.headers["idempotency-key"],
        credentials={"api_key": "SECRET-fake-key"},
        settings={"url": URL},
        message=Message(
            delivery_id="d-1",
            channel=ChannelType.EMAIL,
            to=Recipient(email="ada@example.com"),
            subject="Hello",
            body="Hi Ada",
        ),
        method="POST",
        url=URL,
        success=Answer(202, json={"id": "msg-1"}),
        expected_message_id="msg-1",
        check_request=check_request,
        bad_credentials=Answer(401, json={"error": "unauthorized"}),
        invalid_recipient=Answer(400, json={"error": "invalid_recipient"}),
        required_credential="api_key",
    )
