"""The one HTTP client: the policy and the transport behind the ``http_request`` host function, and
the same transport for a manifest's URL sources (:func:`fetch`).

The runtime calls :func:`perform_request` with the plugin's request JSON and body; everything a
plugin may reach over HTTP is decided here. The policy is *deny by default, grant exactly what is
written*:

* **Hosts.** A request may go only to a host matched by ``manifest.allowed_hosts``; an empty or
  missing list means no HTTP at all. Matching is done on the host name *parsed* from the URL
  (``urllib.parse.urlsplit``), never on the URL text, and the connection is made to exactly that
  parsed host (the URL is rebuilt from it), so ``http://example.com@evil.net/``,
  ``http://example.com.evil.net/`` and ``http://evil.net/example.com`` all go to (and are checked
  as) ``evil.net``. Any port of an allowed host is allowed (ports are not part of the patterns,
  as in the official Extism runtime).
* **Patterns** (see :func:`host_matches`) are globs on the host name, as in the official Extism
  runtime (which uses the ``glob`` crate on ``url.host_str()``): ``*`` matches any run of
  characters *including dots*, ``?`` one character, ``[abc]`` / ``[!abc]`` a character class.
  So ``*.example.com`` matches ``a.example.com`` and ``a.b.example.com`` but neither
  ``example.com`` nor ``badexample.com``; ``*`` alone matches every host. Unlike the glob crate,
  matching is case-insensitive (host names are), a trailing dot is ignored, non-ASCII labels
  are compared in their IDNA (``xn--``) form, and a pattern that is an IP address literal
  (``127.0.0.1``, ``::1``, ``[::1]``) matches that address in any spelling of the same family.
* **Redirects** (301, 302, 303, 307, 308) are followed at most :data:`MAX_REDIRECTS` times, and
  every hop is checked against ``allowed_hosts`` *before* connecting: a redirect to a host that
  is not allowed fails the request with :class:`~extism_fast.errors.CapabilityError`. 303, and
  301/302 answering a POST, turn into a GET without body (what browsers do); 307/308 resend the
  method and body. ``Authorization``, ``Cookie`` and ``Proxy-Authorization`` are dropped when a
  redirect leaves the original scheme/host/port. (The official runtime fails a POST answered
  307/308; re-sending it is what RFC 9110 asks, and README lists it under Differences.)
* **Schemes**: ``http`` and ``https`` only; https verifies certificates with the system's CA
  store (``ssl.create_default_context``).
* **Proxies**: none. ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` and friends in the
  environment are deliberately ignored: the allow-list is enforced on the host we connect to,
  and a proxy taken from the environment would send the plugin's traffic (URL, headers, body)
  to a host nobody allowed. Hosts that can only reach the network through a proxy cannot use
  ``http_request`` (an explicit, manifest-level proxy option would be the way to add that).
* **Limits**: the response body is read in chunks and the request fails with
  :class:`~extism_fast.errors.MemoryLimitError` as soon as it goes past ``max_response_bytes``
  (``memory.max_http_response_bytes``); a ``Content-Length`` over the limit fails before the
  body is read. The whole request (DNS, connect, TLS, every redirect, the body) must finish
  within ``timeout_s``, the remaining time of the plugin call, else
  :class:`~extism_fast.errors.TimeoutError` (the runtime then reports the call as timed out);
  without a call timeout each request is bounded by :data:`DEFAULT_REQUEST_TIMEOUT_S` and
  overrunning it is a :class:`~extism_fast.errors.CallError`. A response may have up to
  :data:`MAX_RESPONSE_HEADER_FIELDS` (128) header fields, as the official runtime's HTTP client
  allows; one more fails the request with a CallError naming the limit.
* **Statuses**: any status the server answers (404, 500, ...) is a result, not an error.
* **Secrets**: error messages name hosts, header *names*, limits and reasons, never a header
  value, the request body, the URL's query or userinfo; where a message shows the URL, it is
  :func:`~extism_fast.host.urls.redact_url`'s ``scheme://host[:port]/path``.

The request runs on a short-lived worker thread so that the deadline bounds everything, even a
DNS lookup: at the deadline the caller stops waiting, shuts the socket down and the worker stops
before sending anything more.

:func:`fetch` (``Manifest.load_modules`` for a ``WasmUrl``) is the same exchange without a host
policy: the user wrote the URL, so any http(s) host is reached and redirects are followed to any
http(s) URL (another scheme is refused); the rest is as above (no proxy, credentials dropped when
a redirect leaves the origin, URL userinfo as Basic credentials, messages without secrets), with
``URL_FETCH_TIMEOUT_S`` for the whole download and no size limit.
"""

from __future__ import annotations

import builtins
import errno
import functools
import http.client
import re
import socket
import ssl
import sys
import threading
import time
from fnmatch import fnmatchcase
from urllib.parse import quote, urljoin, urlsplit

from extism_fast.host.urls import HTTP_TOKEN, URL_CONTROL_CHARS, basic_authorization, redact_url
from extism_fast.errors import CallError, CancelledError, CapabilityError, MemoryLimitError, TimeoutError

# A manifest's URL source loads this module with its first plugin: what only some requests need
# (ipaddress for IP hosts, encodings.idna for non-ASCII patterns, json for a plugin's request) loads
# with them, and typing not at all.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT_S",
    "MAX_REDIRECTS",
    "MAX_RESPONSE_HEADER_FIELDS",
    "HttpResult",
    "RequestCancel",
    "fetch",
    "host_allowed",
    "host_matches",
    "normalize_host",
    "perform_request",
]

#: Bound on one ``http_request`` (redirects included) when the call itself has no timeout.
DEFAULT_REQUEST_TIMEOUT_S = 30.0
#: Redirects followed per request; one more fails the request.
MAX_REDIRECTS = 10

#: Header fields a response may have; one more fails the request. The official runtime's HTTP
#: client (ureq 2) refuses a response with more than 128 fields (measured on extism-sys 1.41);
#: http.client alone would stop at 100 lines.
MAX_RESPONSE_HEADER_FIELDS = 128

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_LINE = 65536  # bytes in one header line, as http.client (_MAXLINE)
_CHUNK = 64 * 1024
_SOCKET_GRACE_S = 1.0
_USER_AGENT = "extism_fast"
# Header names: RFC 9110 tokens (HTTP_TOKEN). Values: no CR, LF or NUL (they would split the request).
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_NON_ASCII = re.compile(r"[^\x21-\x7e]+")
_GLOB_CHARS = frozenset("*?[]!")
# Headers the host computes itself: a plugin's value is ignored (Host: see _check_host_header).
_HOST_COMPUTED = frozenset({"content-length", "transfer-encoding", "connection", "host"})
_CREDENTIALS = ("authorization", "cookie", "proxy-authorization")
_GRANT = "grant it with manifest.allowed_hosts (CLI: --allow-host)"


class HttpResult:
    """The final response of a request: status, headers (lower-case names) and body, and the
    status line's reason phrase (what a failed manifest URL's message shows; not compared).
    Immutable. A plain class, not a dataclass: dataclasses loads inspect (~7 ms of a fresh process
    whose manifest names a URL)."""

    __slots__ = ("status", "headers", "body", "reason")

    status: int
    headers: dict[str, str]
    body: bytes
    reason: str

    def __init__(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"", reason: str = "") -> None:
        for name, value in (("status", status), ("headers", {} if headers is None else headers), ("body", body),
                            ("reason", reason)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: an HttpResult is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: an HttpResult is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is not HttpResult:
            return NotImplemented
        return (self.status, self.headers, self.body) == (other.status, other.headers, other.body)

    __hash__ = None  # type: ignore[assignment]  # its headers are a dict

    def __repr__(self) -> str:
        return f"HttpResult(status={self.status!r}, headers={self.headers!r}, body={self.body!r}, reason={self.reason!r})"

    def headers_json(self) -> bytes:
        """The headers as the JSON object ``http_headers`` returns to the plugin (UTF-8)."""
        import json

        return json.dumps(self.headers, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Host names and patterns
# ---------------------------------------------------------------------------------------------


def normalize_host(host: str) -> str:
    """The canonical form of a host name parsed from a URL, as matched and connected to.

    Lower-case ASCII; non-ASCII labels in IDNA form; no trailing dot; IPv6 addresses without
    brackets, compressed. Raises ValueError for anything that is not a plausible host name.
    """
    if not isinstance(host, str) or not host:
        raise ValueError("the URL has no host")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        import ipaddress

        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError("the host is not a valid IPv6 address") from None
        if address.scope_id:
            raise ValueError("IPv6 zone identifiers are not supported")
        return address.compressed
    if host.endswith("."):
        host = host[:-1]
    try:
        host.encode("ascii")
        host = host.lower()
    except UnicodeEncodeError:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError("the host is not a valid internationalized domain name") from None
    if len(host) > 253 or not _HOST_NAME.fullmatch(host):
        raise ValueError("the host contains characters a host name cannot have")
    return host


def _ip(text: str):
    import ipaddress

    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def _compile_pattern(pattern: str):
    """("ip", address) for an IP literal, else ("glob", lower-case IDNA-safe glob)."""
    address = _ip(pattern)
    if address is not None:
        return "ip", address
    p = pattern.lower()
    if p.endswith(".") and p != ".":
        p = p[:-1]
    labels = []
    for label in p.split("."):
        if not label.isascii() and not (_GLOB_CHARS & set(label)):
            import encodings.idna

            try:
                label = encodings.idna.ToASCII(label).decode("ascii")
            except UnicodeError:
                pass  # cannot match any valid host name: left as written
        labels.append(label)
    return "glob", ".".join(labels)


def host_matches(pattern: str, host: str) -> bool:
    """True when ``pattern`` (an ``allowed_hosts`` entry) matches ``host`` (see the module doc).

    ``host`` should come from :func:`normalize_host`; it is normalized here when it does not.
    """
    if not isinstance(pattern, str) or not pattern:
        return False
    try:
        host = normalize_host(host)
    except ValueError:
        return False
    kind, value = _compile_pattern(pattern)
    if kind == "ip":
        return _ip(host) == value
    return fnmatchcase(host, value)


def host_allowed(host: str, allowed_hosts: Sequence[str]) -> bool:
    """True when any entry of ``allowed_hosts`` matches ``host``; an empty list allows nothing."""
    return any(host_matches(pattern, host) for pattern in allowed_hosts or ())


# ---------------------------------------------------------------------------------------------
# The request
# ---------------------------------------------------------------------------------------------


class _Target:
    """Where a request goes: scheme, host (normalized: normalize_host), port, target (path and
    query, as sent on the request line), authorization (Basic credentials from the URL's userinfo)."""

    __slots__ = ("scheme", "host", "port", "target", "authorization")

    def __init__(self, scheme: str, host: str, port: int, target: str, authorization: str | None) -> None:
        self.scheme, self.host, self.port, self.target, self.authorization = scheme, host, port, target, authorization

    @property
    def origin(self):
        return self.scheme, self.host, self.port

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


def _parse_url(url: str) -> _Target:
    """Parse and validate a URL; raise CallError naming the problem (never the URL itself)."""
    if URL_CONTROL_CHARS.search(url) or "\\" in url:
        raise CallError("invalid URL: it contains whitespace, control characters or a backslash")
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        hostname = parts.hostname
    except ValueError:
        # Not str(exc): urlsplit may quote the whole network location, credentials included.
        raise CallError("invalid URL: its host part cannot be parsed") from None
    try:
        port = parts.port
    except ValueError:  # its text says "as 'PORT'": what follows a colon may be a password
        raise CallError(f"invalid URL {redact_url(url)!r}: the port is not a number from 1 to 65535") from None
    if scheme not in ("http", "https"):
        shown = repr(scheme) if scheme.isascii() and scheme.isprintable() and len(scheme) < 20 else "?"
        raise CallError(f"unsupported URL scheme {shown}: only http:// and https:// URLs can be requested")
    try:
        host = normalize_host(hostname or "")
    except ValueError as exc:
        raise CallError(f"invalid URL: {exc}") from None
    if port is None:
        port = 443 if scheme == "https" else 80
    elif port == 0:
        raise CallError("invalid URL: port 0")
    authorization = basic_authorization(parts)
    target = parts.path or "/"
    if not target.startswith("/"):
        target = "/" + target
    if parts.query:
        target += "?" + parts.query
    target = _NON_ASCII.sub(lambda m: quote(m.group(), safe=""), target)
    return _Target(scheme, host, port, target, authorization)


def _parse_request(request_json: bytes):
    """(url, method, headers) from the plugin's request JSON; CallError naming the problem."""
    import json

    try:
        request = json.loads(request_json)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CallError(f"the request is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise CallError(f"the request must be a JSON object with a \"url\", got {type(request).__name__}")
    url = request.get("url")
    if not isinstance(url, str) or not url:
        raise CallError("the request has no \"url\" (a non-empty string)")
    method = request.get("method")
    if method is None:
        method = "GET"
    if not isinstance(method, str) or len(method) > 32 or not HTTP_TOKEN.fullmatch(method):
        raise CallError("the request's \"method\" must be an HTTP method name such as \"GET\" or \"POST\"")
    headers = request.get("headers")
    if headers is None:
        headers = {}
    if not isinstance(headers, dict):
        raise CallError("the request's \"headers\" must be a JSON object of strings")
    clean: dict[str, str] = {}
    for name, value in headers.items():
        if not HTTP_TOKEN.fullmatch(name):
            raise CallError("the request has a header name that is not a valid HTTP token")
        if not isinstance(value, str):
            raise CallError(f"request header {name!r} must be a string, got {type(value).__name__}")
        if _BAD_VALUE.search(value):
            raise CallError(f"request header {name!r} has a value with CR, LF or NUL characters")
        clean[name] = value
    return url, method.upper(), clean


def _check_host_header(headers: dict[str, str], target: _Target) -> None:
    """A plugin's own Host header must name the URL's host (no domain fronting)."""
    for name, value in headers.items():
        if name.lower() != "host":
            continue
        try:
            named = normalize_host(urlsplit("//" + value.strip()).hostname or "")
        except ValueError:
            named = None
        if named != target.host:
            raise CapabilityError(
                f"the request's Host header does not name the URL's host '{target.host}': a plugin "
                f"may only talk to the hosts in manifest.allowed_hosts; drop the header"
            )


def _deny(host: str, allowed_hosts: Sequence[str], redirect_from: str | None = None) -> CapabilityError:
    if redirect_from is not None:
        return CapabilityError(
            f"HTTP redirect from host '{redirect_from}' to host '{host}' is not allowed: '{host}' "
            f"matches no entry of manifest.allowed_hosts; {_GRANT} to follow it"
        )
    if not allowed_hosts:
        return CapabilityError(
            f"HTTP is not allowed for this plugin (manifest.allowed_hosts is empty): request to host "
            f"'{host}' refused; {_GRANT}"
        )
    return CapabilityError(
        f"HTTP request to host '{host}' is not allowed: it matches no entry of "
        f"manifest.allowed_hosts; {_GRANT}"
    )


class _Cancelled(Exception):
    """The caller gave up (deadline); the worker stops quietly."""


class _State:
    """Shared by the caller and the worker thread of one request."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.done = threading.Event()
        self.cancelled = False
        self.aborted = False  # by RequestCancel
        self.host = ""
        self.result: HttpResult | None = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []

    def check(self) -> float:
        """The time left; raise _Cancelled when the caller gave up or the deadline passed."""
        if self.cancelled:
            raise _Cancelled()
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Cancelled()
        return left

    def register(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            cancelled = self.cancelled
        if cancelled:
            _shutdown(sock)
            raise _Cancelled()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shutdown(sock)

    def abort(self) -> None:
        """The plugin call was cancelled: stop the worker and wake the caller now (a DNS lookup
        in progress is left to finish on the worker thread)."""
        self.aborted = True
        self.cancel()
        self.done.set()


class RequestCancel:
    """Lets another thread abort the request a plugin call is making (``CancelHandle.cancel``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: _State | None = None
        self.cancelled = False

    def cancel(self) -> None:
        """Abort the request in progress, or the next one this token is given to."""
        with self._lock:
            self.cancelled = True
            state = self._state
        if state is not None:
            state.abort()

    def _attach(self, state: _State) -> None:
        with self._lock:
            self._state = state
            cancelled = self.cancelled
        if cancelled:
            state.abort()


def _shutdown(sock: socket.socket) -> None:
    # The plain socket method (not SSLSocket's): wakes a blocked recv/send in the worker.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def _connector(state: _State):
    def create_connection(address, timeout=None, source_address=None):
        host, port = address
        state.check()
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        error: OSError | None = None
        for family, type_, proto, _, sockaddr in infos:
            left = state.check()
            sock = socket.socket(family, type_, proto)
            try:
                state.register(sock)
                # Past the deadline the caller shuts the socket down; this timeout only keeps a
                # worker from lingering if that fails, and must not beat the caller to it.
                sock.settimeout(left + _SOCKET_GRACE_S)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
            except BaseException:
                sock.close()
                raise
        raise error if error is not None else OSError(errno.EADDRNOTAVAIL, "no address for the host name")

    return create_connection


class _TooManyHeaderFields(http.client.HTTPException):
    """The response has more header fields than :data:`MAX_RESPONSE_HEADER_FIELDS`."""


class _HeadReader:
    """The socket file as :meth:`_Response.begin` lets http.client read it.

    Status lines pass through; a header section is handed over in chunks of whole lines of at
    most ``http.client._MAXLINE`` bytes, so http.client's own count (100 lines per section) is
    not what limits a response: the header fields are counted here, as ureq counts them (lines
    that are neither a field nor blank, such as obs-fold continuations, are not counted). A
    section is still bounded by http.client's count of chunks (100 of up to 64 KiB).
    """

    def __init__(self, fp) -> None:
        self._fp = fp
        self._in_headers = False
        self._fields = 0
        self._pending = b""

    def close(self) -> None:
        self._fp.close()

    def _line(self) -> bytes:
        line, self._pending = self._pending or self._fp.readline(_MAX_LINE + 1), b""
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("header line")
        return line

    def readline(self, limit: int = -1) -> bytes:
        if not self._in_headers:  # a status line; its header section follows
            self._in_headers = True
            self._fields = 0
            return self._fp.readline(limit)
        chunk = b""
        while True:
            line = self._line()
            if line in (b"\r\n", b"\n", b""):  # the end of the section
                if chunk:
                    self._pending = line
                    return chunk
                self._in_headers = False
                return line
            if len(chunk) + len(line) > _MAX_LINE:
                self._pending = line
                return chunk
            if b":" in line and line[:1] not in (b" ", b"\t"):
                self._fields += 1
                if self._fields > MAX_RESPONSE_HEADER_FIELDS:
                    raise _TooManyHeaderFields(
                        f"the response has more than {MAX_RESPONSE_HEADER_FIELDS} header fields (the "
                        f"header-count limit, as in the official Extism runtime)")
            chunk += line


class _Response(http.client.HTTPResponse):
    """A response whose header fields are limited by :class:`_HeadReader`, not http.client."""

    def begin(self) -> None:
        if self.headers is not None:
            return
        sock_file = self.fp
        self.fp = reader = _HeadReader(sock_file)
        try:
            super().begin()
        finally:
            if self.fp is reader:  # else http.client closed it (a bad status line)
                self.fp = sock_file


class _Guarded:
    """Mixin for http.client connections: the state's connector, and a check before sending."""

    _extism_state: _State
    response_class: type[http.client.HTTPResponse] = _Response

    def connect(self):  # noqa: D102
        super().connect()  # type: ignore[misc]
        state = self._extism_state
        state.register(self.sock)  # the TLS socket, when it replaced the plain one
        state.check()


class _HTTPConnection(_Guarded, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_Guarded, http.client.HTTPSConnection):
    pass


_ssl_context: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = ssl.create_default_context()
    return _ssl_context


def _open(state: _State, target: _Target, timeout: float) -> http.client.HTTPConnection:
    timeout += _SOCKET_GRACE_S  # see create_connection
    if target.scheme == "https":
        conn: http.client.HTTPConnection = _HTTPSConnection(
            target.host, target.port, timeout=timeout, context=_tls_context())
    else:
        conn = _HTTPConnection(target.host, target.port, timeout=timeout)
    conn._extism_state = state  # type: ignore[attr-defined]
    conn._create_connection = _connector(state)  # type: ignore[attr-defined]
    return conn


def _reason(exc: BaseException) -> str:
    """A short reason for a transport failure, without anything the plugin sent."""
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror or exc})"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed ({exc.verify_message or exc.reason})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or type(exc).__name__})"
    if isinstance(exc, builtins.TimeoutError):
        return "timed out"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without a response"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    if isinstance(exc, _TooManyHeaderFields):
        return str(exc)  # our own text: a count and a limit, nothing the server sent
    if isinstance(exc, http.client.HTTPException):
        # Not str(exc): it may quote what the server sent, which may echo the request.
        return f"invalid HTTP response ({type(exc).__name__})"
    return type(exc).__name__


def _transport_error(state: _State, what: str, exc: BaseException) -> Exception:
    """CallError for a network failure, or _Cancelled when it is the deadline's doing."""
    if state.cancelled or time.monotonic() >= state.deadline:
        return _Cancelled()
    return CallError(f"{what}: {_reason(exc)}")


def _send(state: _State, target: _Target, method: str, headers: dict[str, str], body: bytes | None):
    """One exchange; returns (connection, response) with the response headers read."""
    timeout = state.check()
    conn = _open(state, target, timeout)
    try:
        conn.putrequest(method, target.target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", target.host_header)
        for name, value in headers.items():
            conn.putheader(name, value.encode("utf-8"))
        conn.putheader("Connection", "close")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body or None)
        return conn, conn.getresponse()
    except BaseException:
        conn.close()
        raise


def _request_headers(headers: dict[str, str], target: _Target) -> dict[str, str]:
    out = {k: v for k, v in headers.items() if k.lower() not in _HOST_COMPUTED}
    lower = {k.lower() for k in out}
    if "user-agent" not in lower:
        out["User-Agent"] = _USER_AGENT
    if "accept-encoding" not in lower:
        out["Accept-Encoding"] = "identity"
    if target.authorization is not None and "authorization" not in lower:
        out["Authorization"] = target.authorization
    return out


def _read_body(state: _State, host: str, response: http.client.HTTPResponse, limit: int) -> bytes:
    declared = response.length
    if declared is not None and declared > limit:
        raise MemoryLimitError(
            f"the response from host '{host}' declares {declared} bytes (Content-Length), more than "
            f"memory.max_http_response_bytes = {limit}"
        )
    chunks: list[bytes] = []
    total = 0
    while True:
        state.check()
        chunk = response.read1(min(_CHUNK, limit - total + 1))
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise MemoryLimitError(
                f"the response body from host '{host}' is larger than "
                f"memory.max_http_response_bytes = {limit}"
            )
        chunks.append(chunk)
    if response.length:  # the connection closed before Content-Length bytes arrived
        raise CallError(f"HTTP request to host '{host}' failed: the connection closed before the "
                        f"whole response body arrived")
    return b"".join(chunks)


#: ``follow(current, next_url, status)``: the target a redirect may go to, or raise.
if TYPE_CHECKING:
    _Follow = Callable[[_Target, str, int], _Target]


def _exchange(state: _State, target: _Target, method: str, headers: dict[str, str], body: bytes,
              follow: _Follow, limit: int) -> HttpResult:
    """The exchange (redirects included, each checked by ``follow``) for a target already checked
    against the policy."""
    first_origin = target.origin
    payload: bytes | None = body if body else None
    redirects = 0
    while True:
        state.host = target.host
        sent = _request_headers(headers, target)
        try:
            conn, response = _send(state, target, method, sent, payload)
        except (_Cancelled, CallError):
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise _transport_error(state, f"HTTP request to host '{target.host}' failed", exc) from None
        try:
            location = response.getheader("Location") if response.status in _REDIRECTS else None
            if location is None:
                try:
                    data = _read_body(state, target.host, response, limit)
                except (OSError, http.client.HTTPException) as exc:
                    raise _transport_error(state, f"HTTP request to host '{target.host}' failed while "
                                                  f"reading the response", exc) from None
                names: dict[str, str] = {}
                for name, value in response.getheaders():
                    key = name.lower()
                    names[key] = f"{names[key]}, {value}" if key in names else value
                return HttpResult(response.status, names, data, response.reason)
        finally:
            conn.close()
        # A redirect: check the next hop before connecting to it.
        redirects += 1
        if redirects > MAX_REDIRECTS:
            raise CallError(f"HTTP request to host '{target.host}' failed: more than {MAX_REDIRECTS} "
                            f"redirects")
        next_url = urljoin(f"{target.scheme}://{target.host_header}{target.target}", location.strip())
        following = follow(target, next_url, response.status)
        status = response.status
        if status == 303 or (status in (301, 302) and method == "POST"):
            if method != "HEAD":
                method = "GET"
            payload = None
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        if following.origin != first_origin:
            headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIALS}
        target = following


def perform_request(request_json: bytes, body: bytes, *, allowed_hosts: Sequence[str],
                    max_response_bytes: int, timeout_s: float | None,
                    cancel: RequestCancel | None = None) -> HttpResult:
    """Run a plugin's ``http_request``: check it against the policy, send it, return the response.

    :param request_json: the plugin's ``{"url": ..., "method": "GET", "headers": {...}}``
        (``method`` defaults to GET, ``headers`` to none).
    :param body: the request body (empty: none).
    :param allowed_hosts: ``manifest.allowed_hosts`` (empty: no HTTP at all).
    :param max_response_bytes: ``memory.max_http_response_bytes``.
    :param timeout_s: the time left in the plugin call, or ``None`` when the call has no timeout
        (the request is then bounded by :data:`DEFAULT_REQUEST_TIMEOUT_S`).
    :param cancel: aborts the request when cancelled from another thread.
    :raises CapabilityError: a host (or a redirect's host) is not allowed; nothing was sent to it.
    :raises CancelledError: ``cancel`` was cancelled before the request finished.
    :raises MemoryLimitError: the response body is larger than ``max_response_bytes``.
    :raises TimeoutError: the request did not finish within ``timeout_s``.
    :raises CallError: invalid request JSON or URL, network failure, default timeout, too many
        redirects.
    """
    url, method, headers = _parse_request(bytes(request_json))
    allowed = tuple(allowed_hosts or ())
    # The policy first, in the caller's thread: a denied request never starts anything, and a
    # denial is reported as such even when no time is left.
    target = _parse_url(url)
    if not host_allowed(target.host, allowed):
        raise _deny(target.host, allowed)
    _check_host_header(headers, target)
    call_deadline = timeout_s is not None
    budget = DEFAULT_REQUEST_TIMEOUT_S if timeout_s is None else max(float(timeout_s), 0.0)
    if budget <= 0:
        raise TimeoutError(f"HTTP request to host '{target.host}' not started: no time is left in "
                           f"the call (manifest.timeout_ms)")
    state = _run(target, method, headers, bytes(body or b""), _allowed_hops(allowed), int(max_response_bytes),
                 budget, cancel)
    if state.aborted:
        raise CancelledError(f"HTTP request to host '{state.host}' cancelled (CancelHandle.cancel)")
    result = _outcome(state)
    if result is not None:
        return result
    if call_deadline:
        raise TimeoutError(f"HTTP request to host '{state.host}' did not finish within the time "
                           f"left in the call ({budget * 1000:.0f} ms, manifest.timeout_ms)")
    raise CallError(f"HTTP request to host '{state.host}' did not finish within {budget:g} s (the "
                    f"limit for one request when manifest.timeout_ms is not set)")


def fetch(url: str, *, method: str = "GET", headers: Mapping[str, str] | None = None,
          timeout_s: float) -> HttpResult:
    """The response to ``method url`` for a manifest's URL source (see the module doc): any
    http(s) host, redirects to http(s) URLs only, no size limit, ``timeout_s`` for everything.

    Any status is a result (the caller judges it). :raises CallError: invalid URL, network
    failure, a redirect refused, ``timeout_s`` passed; the text shows no secret of the URL.
    """
    target = _parse_url(url)
    state = _run(target, method, dict(headers or {}), b"", _http_hops, sys.maxsize, timeout_s, None)
    result = _outcome(state)
    if result is None:
        raise CallError(f"timed out (after {timeout_s:g} s)")
    return result


def _allowed_hops(allowed_hosts: Sequence[str]) -> _Follow:
    """http_request's redirect rule: the next URL must parse and its host be allowed."""
    def follow(current: _Target, next_url: str, status: int) -> _Target:
        try:
            following = _parse_url(next_url)
        except CallError as exc:
            raise CallError(f"HTTP redirect from host '{current.host}' cannot be followed: {exc}") from None
        if not host_allowed(following.host, allowed_hosts):
            raise _deny(following.host, allowed_hosts, redirect_from=current.host)
        return following
    return follow


def _http_hops(current: _Target, next_url: str, status: int) -> _Target:
    """fetch's redirect rule: any http(s) URL (urllib would also follow ftp://, and data: or file:
    would read what a manifest's ``path`` sources make explicit)."""
    try:
        scheme = urlsplit(next_url).scheme.lower()
    except ValueError:
        raise CallError(f"HTTP {status} redirects to a URL that cannot be parsed") from None
    if scheme not in ("http", "https"):
        raise CallError(f"HTTP {status} redirects to a {scheme!r} URL: only http:// and https:// redirects "
                        f"are followed")
    try:
        return _parse_url(next_url)
    except CallError as exc:
        raise CallError(f"HTTP redirect from host '{current.host}' cannot be followed: {exc}") from None


def _run(target: _Target, method: str, headers: dict[str, str], payload: bytes, follow: _Follow, limit: int,
         budget: float, cancel: RequestCancel | None) -> _State:
    """The exchange on a worker thread, waited for at most ``budget`` seconds (or until ``cancel``);
    past that the worker is told to stop. Returns its state (see :func:`_outcome`)."""
    state = _State(time.monotonic() + budget)
    state.host = target.host

    def work() -> None:
        try:
            state.result = _exchange(state, target, method, headers, payload, follow, limit)
        except BaseException as exc:  # handed over to the caller
            state.error = exc
        finally:
            state.done.set()

    worker = threading.Thread(target=work, name="extism_fast-http", daemon=True)
    worker.start()
    if cancel is not None:
        cancel._attach(state)
    try:
        state.done.wait(max(state.deadline - time.monotonic(), 0.0))
    finally:
        if not state.done.is_set():
            state.cancel()  # the worker sends nothing more and exits
    return state


def _outcome(state: _State) -> HttpResult | None:
    """The response of a finished exchange, or its error raised; None when the deadline (or a
    cancel) ended it."""
    if not state.done.is_set() or state.aborted:
        return None
    if state.error is None and state.result is not None:
        return state.result
    if state.error is not None and not isinstance(state.error, _Cancelled):
        raise state.error
    return None
