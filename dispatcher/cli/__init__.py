"""The ``dispatcher`` command: ``main`` holds the group and the everyday commands, ``integrations``
and ``keys`` their command groups."""
