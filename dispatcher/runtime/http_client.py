"""The HTTP client every organisation's sends share in one worker process.

It is httpx's ``AsyncClient`` (the interface providers are written against) with two changes:

* it keeps no cookies: a cookie one provider account's answer sets must not ride along on
  another organisation's requests;
* a request without ``auth`` goes straight to the transport, skipping httpx's auth, redirect,
  event-hook and cookie machinery (the client follows no redirects and has no hooks anyway).
  That machinery was about 5% of a sending worker's time under py-spy. Requests with ``auth``
  (HTTP Basic providers) take httpx's full path.
"""

from __future__ import annotations

import logging
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

httpx_logger = logging.getLogger("httpx")


def no_cookies() -> CookieJar:
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


class SharedAsyncClient(httpx.AsyncClient):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cookies=no_cookies(), **kwargs)

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        if auth is not httpx.USE_CLIENT_DEFAULT or self.auth is not None or self.follow_redirects:
            return await super().send(
                request, stream=stream, auth=auth, follow_redirects=follow_redirects
            )
        if self.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        transport = self._transport_for_url(request.url)
        response = await transport.handle_async_request(request)
        response.request = request
        # httpx's own request line, so logging and its redaction (providers.http) stay as they are.
        httpx_logger.info(
            'HTTP Request: %s %s "%s %d %s"',
            request.method, request.url, response.http_version, response.status_code,
            response.reason_phrase,
        )  # fmt: skip
        if not stream:
            try:
                await response.aread()
            except BaseException:
                await response.aclose()
                raise
        return response
