"""The load-generating HTTP/1.1 client (see :mod:`phalanx.http.session` for the map)."""

from phalanx.http.cookies import CookieJar
from phalanx.http.headers import Headers
from phalanx.http.options import HttpOptions, TlsContexts
from phalanx.http.response import HttpStatusError, Response
from phalanx.http.session import HttpSession, RequestCall

__all__ = [
    "CookieJar",
    "Headers",
    "HttpOptions",
    "HttpSession",
    "HttpStatusError",
    "RequestCall",
    "Response",
    "TlsContexts",
]
