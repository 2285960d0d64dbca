"""The load-generating HTTP/1.1 client (see :mod:`phalanx.http.session` for the map).

Its classes are final: in a compiled build (:mod:`phalanx.core.build`) they are
compiled classes, which Python code can neither subclass nor patch. Scripts use
them (``self.client``, responses, ``self.client.cookies``); another client is
timed with ``self.measure(...)`` (:mod:`phalanx.scripting.measure`), not by
subclassing these.
"""

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
