"""The error answer every emulator component raises: Microsoft Graph's JSON error shape.

The HTTP layer renders a ``GraphHttpError`` as::

    {"error": {"code": code, "message": message,
               "innerError": {"date": ..., "request-id": ...,
                              "client-request-id": ...}}}

with ``status`` and any extra ``headers`` (for example ``Retry-After``).
"""


class GraphHttpError(Exception):
    """A Graph error response: HTTP status, Graph error code and message."""

    def __init__(self, status, code, message, *, headers=None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
