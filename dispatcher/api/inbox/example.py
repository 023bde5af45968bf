"""``/inbox/example``: a page with a bell, its unread count and the feed, updated live.

It shows how a page uses the inbox without a client library (``fetch`` and ``EventSource``)
and lets a person watch a trigger arrive. It signs the subscriber id itself, so it opens any
subscriber's inbox: it is mounted only with ``DISPATCHER_INBOX_EXAMPLE`` (``make run`` sets it).
"""

from __future__ import annotations

import html
import json

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from dispatcher.api.errors import NotFoundError
from dispatcher.api.inbox.secrets import keys_for_application
from dispatcher.api.inbox.sessions import subscriber_hash

router = APIRouter(include_in_schema=False)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Inbox of {title}</title>
<style>
body {{ font: 15px system-ui, sans-serif; margin: 2rem; max-width: 40rem; }}
#bell {{ font-size: 1.4rem; }} #count {{ background: #c00; color: #fff; border-radius: 1rem;
padding: 0 .5rem; font-size: .9rem; }} li {{ padding: .5rem; border-bottom: 1px solid #ddd;
cursor: pointer; list-style: none; }} li.unread {{ font-weight: 600; }}
</style></head>
<body>
<div id="bell">&#128276; <span id="count">&hellip;</span></div>
<ul id="feed"></ul>
<script>
const SETTINGS = {settings};
let token;
const api = (path, options = {{}}) => fetch(`/v1/inbox${{path}}`, {{...options,
  headers: {{"Content-Type": "application/json", Authorization: `Bearer ${{token}}`}}}});
function show(item) {{
  const li = document.createElement("li");
  li.dataset.id = item.id;
  li.className = item.isRead ? "read" : "unread";
  li.textContent = (item.subject ? item.subject + ": " : "") + item.body;
  li.onclick = async () => {{ await api(`/notifications/${{item.id}}/read`, {{method: "PATCH"}});
    li.className = "read"; }};
  return li;
}}
async function start() {{
  const session = await fetch("/v1/inbox/session", {{method: "POST",
    headers: {{"Content-Type": "application/json"}}, body: JSON.stringify(SETTINGS)}});
  const {{data}} = await session.json();
  token = data.token;
  document.getElementById("count").textContent = data.unreadCount.total;
  const page = await (await api("/notifications?limit=20&archived=false")).json();
  const feed = document.getElementById("feed");
  page.data.forEach((item) => feed.append(show(item)));
  const events = new EventSource(`/v1/inbox/events?token=${{encodeURIComponent(token)}}`);
  events.addEventListener("unread_count_changed", (event) => {{
    document.body.dataset.live = "yes";  // the stream sends the counts first: it is open
    document.getElementById("count").textContent = JSON.parse(event.data).unreadCount; }});
  events.addEventListener("notification_received", (event) => {{
    const message = JSON.parse(event.data).message;
    feed.prepend(show({{id: message._id, subject: message.subject, body: message.content,
      isRead: message.read}})); }});
}}
start();
</script></body></html>
"""


@router.get("/inbox/example", response_class=HTMLResponse)
def example_page(
    application_identifier: str = Query(alias="applicationIdentifier", max_length=64),
    subscriber_id: str = Query(alias="subscriberId", min_length=1, max_length=200),
) -> HTMLResponse:
    keys = keys_for_application(application_identifier)
    if keys is None:
        raise NotFoundError("applicationIdentifier: no such application")
    settings = {
        "applicationIdentifier": application_identifier,
        "subscriber": {"subscriberId": subscriber_id},
        "subscriberHash": subscriber_hash(subscriber_id, keys.secrets[0]),
    }
    # JSON inside <script>: "<" escaped, so no value can close the element.
    embedded = json.dumps(settings).replace("<", "\\u003c")
    return HTMLResponse(PAGE.format(title=html.escape(subscriber_id), settings=embedded))
