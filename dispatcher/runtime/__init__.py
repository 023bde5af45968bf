"""Process resources built from the settings: the database (``db``, ``sqlite``), the credential key
ring (``keys``), the embedded broker's URL (``embedded_broker``), the sending process's event loop
and shared HTTP clients (``http``, ``http_client``), the destination policy (``url_guard``) and
the connector that enforces it on every connection (``guarded_connector``), and ``resources``,
the one place that builds and resets them per process.
"""
