"""URL helpers and HTTP syntax shared by the manifest's URL sources (their validation,
extism_fast/manifest/schema.py) and the HTTP client (extism_fast/host/http.py).

Both take URLs from parties that may put secrets in them (``user:pass@``, ``?access_token=...``),
so neither may print a URL as given: :func:`redact_url` is the only form of a URL that goes into
an error message, and :func:`basic_authorization` turns URL credentials into a header.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

__all__ = ["HTTP_TOKEN", "URL_CONTROL_CHARS", "basic_authorization", "redact_url", "url_problem"]

#: An RFC 9110 token: what an HTTP method or header name may contain.
HTTP_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Never valid in a URL as written: controls and spaces (urllib would refuse them later, with a
#: message quoting the URL).
URL_CONTROL_CHARS = re.compile(r"[\x00-\x20\x7f]")


#: What a manifest's URL starts with: http:// or https:// and a host. Only http(s): a file:// or
#: ftp:// URL from a manifest of an untrusted party could read local files in a way ``path``
#: sources make explicit.
_HTTP_URL = re.compile(r"(?i)https?://[^/?#]")


def url_problem(url: str) -> str | None:
    """What keeps ``url`` (a str) from being an http(s) URL the HTTP client fetches as it is, said
    after "an http:// or https:// URL" ("" when it is not one at all), or None when nothing does."""
    if not _HTTP_URL.match(url):
        return ""
    if URL_CONTROL_CHARS.search(url):
        return " without spaces or control characters"
    try:
        urlsplit(url).port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        return " with a valid host and port"
    return None


def redact_url(url: str) -> str:
    """``scheme://host[:port]/path`` of ``url``: no userinfo, query or fragment.

    The port is kept only when it parses (an unparseable "port" may be a password: in
    ``http://user:pass`` everything after the colon is the port). A URL that cannot be parsed at
    all gives a fixed placeholder, never its text, and so does one with an ``@`` but no network
    location (``http:user:pass@host``, ``1http://user:pass@host``): its credentials were not
    parsed as such and would be shown as its path.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except (ValueError, TypeError):
        return "<a URL that cannot be parsed>"
    if not parts.netloc and "@" in parts.path:
        return "<a URL without a host (not shown: it may hold credentials)>"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def basic_authorization(parts: SplitResult) -> str | None:
    """The ``Authorization: Basic`` value for the userinfo of a parsed URL, or ``None`` without one."""
    if parts.username is None and parts.password is None:
        return None
    credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")
