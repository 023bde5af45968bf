"""The SigV4 signer against AWS's published Signature Version 4 test suite.

Each vector is a case of the suite AWS publishes for its SDKs (``aws-sig-v4-test-suite``, kept in
``awslabs/aws-c-auth`` under ``tests/aws-signing-test-suite/v4``): the raw request, the expected
canonical request, string to sign and ``Authorization`` header, for the suite's fixed credentials
(``AKIDEXAMPLE``), region ``us-east-1``, service ``service`` and time 2015-08-30T12:36:00Z.
Matching all three proves each signing step, not just the final shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from providers.aws_sigv4 import (
    AwsCredentials,
    canonical_uri,
    sign,
    signed_headers_for,
    signing_key,
)

ACCESS_KEY_ID = "AKIDEXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = datetime(2015, 8, 30, 12, 36, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Vector:
    name: str
    request: str
    token: str | None
    sign_body: bool
    canonical_request: str
    string_to_sign: str
    authorization: str


@dataclass(frozen=True)
class RawRequest:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes


def parse(raw: str) -> RawRequest:
    """The suite's ``request.txt``: request line, ``Name:value`` headers (folded lines start with
    whitespace), a blank line, then the body."""
    head, _, body = raw.partition("\n\n")
    lines = [line for line in head.split("\n") if line]
    method, _, rest = lines[0].partition(" ")
    target = rest.rpartition(" ")[0]
    path, _, query = target.partition("?")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[0] in " \t":
            name, value = headers[-1]
            headers[-1] = (name, f"{value}\n{line}")
            continue
        name, _, value = line.partition(":")
        headers.append((name, value))
    return RawRequest(method, path, query, headers, body.encode())


VECTORS: tuple[Vector, ...] = (
    Vector(
        name="get-vanilla",
        request=("GET / HTTP/1.1\nHost:example.amazonaws.com\n"),
        token=None,
        sign_body=False,
        canonical_request=(
            "GET\n"
            "/\n"
            "\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf"
            "1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        ),
    ),
    Vector(
        name="get-vanilla-query-order-key-case",
        request=("GET /?Param2=value2&Param1=value1 HTTP/1.1\nHost:example.amazonaws.com\n"),
        token=None,
        sign_body=False,
        canonical_request=(
            "GET\n"
            "/\n"
            "Param1=value1&Param2=value2\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5bef"
            "f61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        ),
    ),
    Vector(
        name="get-vanilla-query-order-encoded",
        request=(
            "GET /?Param-3=Value3&Param=Value2&%E1%88%B4=Value1 HTTP/1.1\n"
            "Host:example.amazonaws.com\n"
        ),
        token=None,
        sign_body=False,
        canonical_request=(
            "GET\n"
            "/\n"
            "%E1%88%B4=Value1&Param=Value2&Param-3=Value3\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "868294f5c38bd141c4972a373a76654f1418a8e4fc18b2e7903ae45e8ae0ec71"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;x-amz-date, Signature=371d3713e185cc3340"
            "48618a97f809c9ffe339c62934c032af5a0e595648fcac"
        ),
    ),
    Vector(
        name="get-vanilla-query-unreserved",
        request=(
            "GET /?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx"
            "yz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz "
            "HTTP/1.1\n"
            "Host:example.amazonaws.com\n"
        ),
        token=None,
        sign_body=False,
        canonical_request=(
            "GET\n"
            "/\n"
            "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._"
            "~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;x-amz-date, Signature=9c3e54bfcdf0b19771"
            "a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"
        ),
    ),
    Vector(
        name="get-vanilla-utf8-query",
        request=("GET /?ሴ=bar HTTP/1.1\nHost:example.amazonaws.com\n"),
        token=None,
        sign_body=False,
        canonical_request=(
            "GET\n"
            "/\n"
            "%E1%88%B4=bar\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;x-amz-date, Signature=2cdec8eed098649ff3"
            "a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"
        ),
    ),
    Vector(
        name="get-vanilla-empty-query-key",
        request=("GET /?Param1=value1 HTTP/1.1\nHost:example.amazonaws.com\n"),
        token=None,
        sign_body=False,
        canonical_request=(
            "GET\n"
            "/\n"
            "Param1=value1\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;x-amz-date, Signature=a67d582fa61cc504c4"
            "bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"
        ),
    ),
    Vector(
        name="get-utf8",
        request=("GET /ሴ HTTP/1.1\nHost:example.amazonaws.com\n"),
        token=None,
        sign_body=False,
        canonical_request=(
            "GET\n"
            "/%E1%88%B4\n"
            "\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;x-amz-date, Signature=8318018e0b0f223aa2"
            "bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"
        ),
    ),
    Vector(
        name="get-unreserved",
        request=(
            "GET /-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxy"
            "z HTTP/1.1\n"
            "Host:example.amazonaws.com\n"
        ),
        token=None,
        sign_body=False,
        canonical_request=(
            "GET\n"
            "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n"
            "\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;x-amz-date, Signature=07ef7494c76fa48508"
            "83e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"
        ),
    ),
    Vector(
        name="get-space-normalized",
        request=("GET /example space/ HTTP/1.1\nHost:example.amazonaws.com\n"),
        token=None,
        sign_body=False,
        canonical_request=(
            "GET\n"
            "/example%20space/\n"
            "\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;x-amz-date, Signature=652487583200325589"
            "f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"
        ),
    ),
    Vector(
        name="get-slashes-normalized",
        request=("GET //example// HTTP/1.1\nHost:example.amazonaws.com\n"),
        token=None,
        sign_body=False,
        canonical_request=(
            "GET\n"
            "/example/\n"
            "\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "cb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;x-amz-date, Signature=9a624bd73a37c9a373"
            "b5312afbebe7a714a789de108f0bdfe846570885f57e84"
        ),
    ),
    Vector(
        name="get-slash-dot-slash-normalized",
        request=("GET /./ HTTP/1.1\nHost:example.amazonaws.com\n"),
        token=None,
        sign_body=False,
        canonical_request=(
            "GET\n"
            "/\n"
            "\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf"
            "1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        ),
    ),
    Vector(
        name="get-relative-relative-normalized",
        request=("GET /example1/example2/../.. HTTP/1.1\nHost:example.amazonaws.com\n"),
        token=None,
        sign_body=False,
        canonical_request=(
            "GET\n"
            "/\n"
            "\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf"
            "1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        ),
    ),
    Vector(
        name="get-header-key-duplicate",
        request=(
            "GET / HTTP/1.1\n"
            "Host:example.amazonaws.com\n"
            "My-Header1:value2\n"
            "My-Header1:value2\n"
            "My-Header1:value1\n"
        ),
        token=None,
        sign_body=False,
        canonical_request=(
            "GET\n"
            "/\n"
            "\n"
            "host:example.amazonaws.com\n"
            "my-header1:value2,value2,value1\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;my-header1;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=c9d5ea9"
            "f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"
        ),
    ),
    Vector(
        name="get-header-value-order",
        request=(
            "GET / HTTP/1.1\n"
            "Host:example.amazonaws.com\n"
            "My-Header1:value4\n"
            "My-Header1:value1\n"
            "My-Header1:value3\n"
            "My-Header1:value2\n"
        ),
        token=None,
        sign_body=False,
        canonical_request=(
            "GET\n"
            "/\n"
            "\n"
            "host:example.amazonaws.com\n"
            "my-header1:value4,value1,value3,value2\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;my-header1;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=08c7e5a"
            "9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"
        ),
    ),
    Vector(
        name="get-header-value-multiline",
        request=(
            "GET / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:value1\n  value2\n     value3\n"
        ),
        token=None,
        sign_body=False,
        canonical_request=(
            "GET\n"
            "/\n"
            "\n"
            "host:example.amazonaws.com\n"
            "my-header1:value1 value2 value3\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;my-header1;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "e99419459a677bc11de234014be3c4e72c1ea5b454ceb58b613061f5d7a162e8"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=cfd3424"
            "9e4b1c8d6b91ef74165d41a32e5fab3306300901bb65a51a73575eefd"
        ),
    ),
    Vector(
        name="get-header-value-trim",
        request=(
            "GET / HTTP/1.1\n"
            "Host:example.amazonaws.com\n"
            "My-Header1: value1\n"
            'My-Header2: "a   b   c"\n'
        ),
        token=None,
        sign_body=False,
        canonical_request=(
            "GET\n"
            "/\n"
            "\n"
            "host:example.amazonaws.com\n"
            "my-header1:value1\n"
            'my-header2:"a b c"\n'
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;my-header1;my-header2;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;my-header1;my-header2;x-amz-date, Signat"
            "ure=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"
        ),
    ),
    Vector(
        name="post-header-key-case",
        request=("POST / HTTP/1.1\nHost:example.amazonaws.com\n"),
        token=None,
        sign_body=False,
        canonical_request=(
            "POST\n"
            "/\n"
            "\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee75"
            "05fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        ),
    ),
    Vector(
        name="post-header-key-sort",
        request=("POST / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:value1\n"),
        token=None,
        sign_body=False,
        canonical_request=(
            "POST\n"
            "/\n"
            "\n"
            "host:example.amazonaws.com\n"
            "my-header1:value1\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;my-header1;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=c541005"
            "9b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"
        ),
    ),
    Vector(
        name="post-header-value-case",
        request=("POST / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:VALUE1\n"),
        token=None,
        sign_body=False,
        canonical_request=(
            "POST\n"
            "/\n"
            "\n"
            "host:example.amazonaws.com\n"
            "my-header1:VALUE1\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;my-header1;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=cdbc980"
            "2e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"
        ),
    ),
    Vector(
        name="post-vanilla",
        request=("POST / HTTP/1.1\nHost:example.amazonaws.com\n"),
        token=None,
        sign_body=False,
        canonical_request=(
            "POST\n"
            "/\n"
            "\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee75"
            "05fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        ),
    ),
    Vector(
        name="post-vanilla-query",
        request=("POST /?Param1=value1 HTTP/1.1\nHost:example.amazonaws.com\n"),
        token=None,
        sign_body=False,
        canonical_request=(
            "POST\n"
            "/\n"
            "Param1=value1\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;x-amz-date, Signature=28038455d6de14eafc"
            "1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"
        ),
    ),
    Vector(
        name="post-x-www-form-urlencoded",
        request=(
            "POST / HTTP/1.1\n"
            "Content-Type:application/x-www-form-urlencoded\n"
            "Host:example.amazonaws.com\n"
            "Content-Length:13\n"
            "\n"
            "Param1=value1"
        ),
        token=None,
        sign_body=True,
        canonical_request=(
            "POST\n"
            "/\n"
            "\n"
            "content-length:13\n"
            "content-type:application/x-www-form-urlencoded\n"
            "host:example.amazonaws.com\n"
            "x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106"
            "275f4c7b24d0b6e\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "content-length;content-type;host;x-amz-content-sha256;x-amz-date\n"
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "b1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=content-length;content-type;host;x-amz-conten"
            "t-sha256;x-amz-date, Signature=d3875051da38690788ef43de4db0d8f280229d8"
            "2040bfac253562e56c3f20e0b"
        ),
    ),
    Vector(
        name="post-x-www-form-urlencoded-parameters",
        request=(
            "POST / HTTP/1.1\n"
            "Content-Type:application/x-www-form-urlencoded; charset=utf-8\n"
            "Host:example.amazonaws.com\n"
            "Content-Length:13\n"
            "\n"
            "Param1=value1"
        ),
        token=None,
        sign_body=True,
        canonical_request=(
            "POST\n"
            "/\n"
            "\n"
            "content-length:13\n"
            "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
            "host:example.amazonaws.com\n"
            "x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106"
            "275f4c7b24d0b6e\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "content-length;content-type;host;x-amz-content-sha256;x-amz-date\n"
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "a89f1a5b53e37702ee6363ce1da3ce8f54386f3c8f352ae652153c2982a0bc4d"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=content-length;content-type;host;x-amz-conten"
            "t-sha256;x-amz-date, Signature=328d1b9eaadca9f5818ef05e8392801e091653b"
            "afec24fcab71e7344e7f51422"
        ),
    ),
    Vector(
        name="get-vanilla-with-session-token",
        request=("GET / HTTP/1.1\nHost:example.amazonaws.com\n"),
        token="6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
        sign_body=False,
        canonical_request=(
            "GET\n"
            "/\n"
            "\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "x-amz-security-token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31"
            "553b73ebf194267\n"
            "\n"
            "host;x-amz-date;x-amz-security-token\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "067b36aa60031588cea4a4cde1f21215227a047690c72247f1d70b32fbbfad2b"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signatu"
            "re=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
        ),
    ),
    Vector(
        name="post-sts-header-before",
        request=("POST / HTTP/1.1\nHost:example.amazonaws.com\n"),
        token=(
            "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWs"
            "KWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGde"
            "ehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8T"
            "x6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FD"
            "rypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
        ),
        sign_body=False,
        canonical_request=(
            "POST\n"
            "/\n"
            "\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "x-amz-security-token:AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wD"
            "Ok4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSE"
            "I/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0w"
            "q5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL6"
            "4lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/"
            "oLxBA==\n"
            "\n"
            "host;x-amz-date;x-amz-security-token\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ),
        string_to_sign=(
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6"
        ),
        authorization=(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws"
            "4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signatu"
            "re=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
        ),
    ),
)


@pytest.mark.parametrize("vector", VECTORS, ids=[vector.name for vector in VECTORS])
def test_aws_signature_v4_test_suite(vector: Vector) -> None:
    request = parse(vector.request)
    credentials = AwsCredentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY, vector.token)
    signature = sign(
        request.method,
        request.path,
        request.query,
        request.headers,
        request.body,
        credentials=credentials,
        region="us-east-1",
        service="service",
        now=NOW,
        content_sha256_header=vector.sign_body,
    )
    assert signature.canonical_request == vector.canonical_request
    assert signature.string_to_sign == vector.string_to_sign
    assert signature.authorization == vector.authorization
    added = dict(signature.headers)
    assert added["X-Amz-Date"] == "20150830T123600Z"
    if vector.token:
        assert added["X-Amz-Security-Token"] == vector.token
    else:
        assert "X-Amz-Security-Token" not in added


def test_signing_key_matches_the_documented_derivation_example() -> None:
    # AWS's "derive a signing key" example: secret, 20120215, us-east-1, iam.
    key = signing_key(SECRET_ACCESS_KEY, "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_signing_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sign(
            "GET",
            "/",
            "",
            [("Host", "example.amazonaws.com")],
            b"",
            credentials=AwsCredentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY),
            region="us-east-1",
            service="service",
            now=NOW.replace(tzinfo=None),
        )


def test_secrets_stay_out_of_reprs() -> None:
    credentials = AwsCredentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY, "SESSION-TOKEN")
    signature = sign(
        "GET",
        "/",
        "",
        [("Host", "example.amazonaws.com")],
        b"",
        credentials=credentials,
        region="us-east-1",
        service="service",
        now=NOW,
    )
    for text in (repr(credentials), repr(signature)):
        assert SECRET_ACCESS_KEY not in text
        assert "SESSION-TOKEN" not in text
        assert signature.signature not in text


def test_httpx_path_is_encoded_again_as_non_s3_services_require() -> None:
    # The path on the wire is already percent-encoded; the canonical URI encodes it once more.
    assert canonical_uri("/%E1%88%B4") == "/%25E1%2588%25B4"


def test_signed_headers_for_an_httpx_url_sign_what_is_sent() -> None:
    url = httpx.URL("https://example.amazonaws.com/?Param2=value2&Param1=value1")
    headers = signed_headers_for(
        "GET",
        url,
        {},
        b"",
        credentials=AwsCredentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY),
        region="us-east-1",
        service="service",
        now=NOW,
    )
    # Same request as the suite's get-vanilla-query-order-key-case.
    assert headers["Host"] == "example.amazonaws.com"
    assert headers["Authorization"].endswith(
        "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
    )
