"""The browser inbox (Novu's inbox protocol, what ``@novu/js`` speaks): subscriber sessions
(:mod:`.sessions`), the feed over the in-app messages (:mod:`.feed`), and live updates by
Socket.IO and Server-Sent Events (:mod:`.live`). Its routes are in
:mod:`dispatcher.api.routers.inbox`; they take a subscriber's session token, never an API key."""
