"""http_request: deny by default, grant exactly what allowed_hosts says, bounded by the call's
timeout and memory.max_http_response_bytes (extism_fast/host/http.py).

Everything talks to a local server on 127.0.0.1 only. The same server is also reached as
``localhost``: two host names for one server, so a test can allow one name and check that
nothing arrived under the other (the server records the Host header of every request).
"""

from __future__ import annotations

import base64
import http.server
import json
import socket
import struct
import threading
import time
from urllib.parse import quote, unquote

import pytest

import extism_fast as ef
from extism_fast import http as efhttp
from extism_fast._urls import redact_url
from extism_fast.http import HttpResult, host_allowed, host_matches, normalize_host, perform_request
from extism_fast.manifest import Manifest, WasmUrl

SECRET = "s3cr3t-token-value"
BODY_SECRET = b"body-secret-payload"
LIMIT = 100  # memory.max_http_response_bytes in the size tests


# ---------------------------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    server: "_Server"

    def _record(self, body: bytes = b"") -> None:
        with self.server.lock:
            self.server.requests.append(
                {"method": self.command, "path": self.path, "host": self.headers.get("Host", ""),
                 "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})

    def _reply(self, status: int, body: bytes, headers: dict | None = None, length: bool = True) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._record()
        port = self.server.server_address[1]
        path = self.path.split("?")[0]
        if path == "/hello":
            self._reply(200, b"hello from the server", {"X-Custom": "yes"})
        elif path == "/missing":
            self._reply(404, b"no such page")
        elif path == "/slow":
            self.server.stopping.wait(2.0)  # ends early when the fixture shuts the server down
            try:
                self._reply(200, b"too late")
            except OSError:
                pass
        elif path == "/big":
            self._reply(200, b"x" * (LIMIT * 10))
        elif path == "/big-no-length":  # close-delimited: only counting can catch it
            self._reply(200, b"y" * (LIMIT * 10), length=False)
        elif path == "/exact":
            self._reply(200, b"z" * LIMIT)
        elif path == "/redirect-same":
            self._reply(302, b"", {"Location": "/hello"})
        elif path == "/redirect-denied":
            self._reply(302, b"", {"Location": f"http://localhost:{port}/hello"})
        elif path == "/redirect-other-name":
            self._reply(302, b"", {"Location": f"http://localhost:{port}/echo-headers"})
        elif path == "/redirect-loop":
            self._reply(302, b"", {"Location": "/redirect-loop"})
        elif path == "/echo-headers":
            self._reply(200, json.dumps({k.lower(): v for k, v in self.headers.items()}).encode())
        elif path == "/redirect-to":  # /redirect-to?<Location, percent-encoded>
            self._reply(302, b"", {"Location": unquote(self.path.split("?", 1)[1])})
        elif path == "/cookies":  # /cookies?<n>: n Set-Cookie lines (+ Server, Date, Content-Length)
            self._send_cookies(int(self.path.split("?", 1)[1]))
        else:
            self._reply(500, b"unknown route")

    def _send_cookies(self, n: int) -> None:
        self.send_response(200)
        for i in range(n):
            self.send_header("Set-Cookie", f"c{i}={SECRET}")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def do_POST(self):  # noqa: N802
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._record(data)
        path = self.path.split("?")[0]
        port = self.server.server_address[1]
        if path == "/echo":
            self._reply(201, data, {"Content-Type": self.headers.get("Content-Type", "none")})
        elif path in ("/redirect-307", "/redirect-308"):
            self._reply(int(path[-3:]), b"", {"Location": "/echo"})
        elif path == "/redirect-307-denied":
            self._reply(307, b"", {"Location": f"http://localhost:{port}/echo"})
        elif path == "/redirect-303":
            self._reply(303, b"", {"Location": "/hello"})
        else:
            self._reply(500, b"unknown route")

    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.stopping = threading.Event()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def seen(self) -> list[dict]:
        with self.lock:
            return list(self.requests)


@pytest.fixture(scope="module")
def _http_server():
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.stopping.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def other_server():
    """A second server on 127.0.0.1, another port: another origin without resolving a name."""
    other = _Server()
    thread = threading.Thread(target=other.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield other
    other.stopping.set()
    other.shutdown()
    other.server_close()
    thread.join(5)


@pytest.fixture
def server(_http_server, monkeypatch):
    """The module's server with an empty request log; proxy variables cleared."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    with _http_server.lock:
        _http_server.requests.clear()
    return _http_server


# ---------------------------------------------------------------------------------------------
# the plugin (tests/plugins/host.wat, export http_request)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host_wasm(plugin_wasm):
    return plugin_wasm("host")


def request_input(url: str, method: str | None = "GET", body: bytes = b"", headers: dict | None = None) -> bytes:
    """host.wat http_request input: u64 LE J, J bytes of request JSON, then the body."""
    req: dict = {"url": url}
    if method is not None:
        req["method"] = method
    if headers is not None:
        req["headers"] = headers
    raw = json.dumps(req).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def parse_output(out: bytes):
    """host.wat http_request output -> (status, body, http_headers() bytes)."""
    status = struct.unpack_from("<I", out, 0)[0]
    n = struct.unpack_from("<Q", out, 4)[0]
    return status, out[12 : 12 + n], out[12 + n :]


def make_plugin(wasm, allowed=("127.0.0.1",), *, headers=False, **manifest):
    m = {"wasm": [{"data": wasm}], **manifest}
    if allowed is not None:
        m["allowed_hosts"] = list(allowed)
    return ef.Plugin(m, functions=[], http_response_headers=headers)


def fetch(plugin, url, method="GET", body=b"", headers=None):
    return parse_output(plugin.call("http_request", request_input(url, method, body, headers)))


# ---------------------------------------------------------------------------------------------
# granted requests
# ---------------------------------------------------------------------------------------------


def test_get(host_wasm, server):
    with make_plugin(host_wasm) as plugin:
        status, body, headers = fetch(plugin, server.url("/hello"))
    assert (status, body) == (200, b"hello from the server")
    assert headers == b""  # http_headers() returns 0 unless http_response_headers=True
    [req] = server.seen()
    assert (req["method"], req["path"], req["host"]) == ("GET", "/hello", f"127.0.0.1:{server.port}")


def test_response_headers_only_when_asked(host_wasm, server):
    with make_plugin(host_wasm, headers=True) as plugin:
        status, body, headers = fetch(plugin, server.url("/hello"))
    assert (status, body) == (200, b"hello from the server")
    parsed = json.loads(headers)
    assert parsed["x-custom"] == "yes"
    assert parsed["content-length"] == str(len(body))


def test_post_with_body_and_headers(host_wasm, server):
    with make_plugin(host_wasm) as plugin:
        status, body, _ = fetch(plugin, server.url("/echo"), "POST", b"ping \x00\xff",
                                {"Content-Type": "application/octet-stream", "X-Trace": "t1"})
    assert (status, body) == (201, b"ping \x00\xff")
    [req] = server.seen()
    assert req["method"] == "POST" and req["body"] == b"ping \x00\xff"
    assert req["headers"]["x-trace"] == "t1"
    assert req["headers"]["content-length"] == "7"


def test_method_and_headers_default(host_wasm, server):
    with make_plugin(host_wasm) as plugin:
        status, body, _ = fetch(plugin, server.url("/hello"), method=None)
    assert (status, body) == (200, b"hello from the server")
    assert server.seen()[0]["method"] == "GET"


def test_404_is_a_result_not_an_error(host_wasm, server):
    with make_plugin(host_wasm) as plugin:
        assert fetch(plugin, server.url("/missing"))[:2] == (404, b"no such page")
        assert fetch(plugin, server.url("/hello"))[0] == 200  # status of the latest request


def test_globs_and_star(host_wasm, server):
    for allowed in (["127.0.0.*"], ["*"], ["other.example", "127.0.0.1"]):
        with make_plugin(host_wasm, allowed) as plugin:
            assert fetch(plugin, server.url("/hello"))[0] == 200


def test_redirect_within_allowed_hosts_is_followed(host_wasm, server):
    with make_plugin(host_wasm) as plugin:
        assert fetch(plugin, server.url("/redirect-same"))[:2] == (200, b"hello from the server")
    assert [r["path"] for r in server.seen()] == ["/redirect-same", "/hello"]


@pytest.mark.parametrize("status", [307, 308])
def test_redirect_307_308_keep_method_and_body_303_becomes_get(host_wasm, server, status):
    # The official runtime fails a POST answered 307/308 (test_compat.py); RFC 9110 re-sends it.
    with make_plugin(host_wasm) as plugin:
        assert fetch(plugin, server.url(f"/redirect-{status}"), "POST", b"again",
                     {"Content-Type": "text/x-again"}) == (201, b"again", b"")
        assert fetch(plugin, server.url("/redirect-303"), "POST", b"gone")[:2] == (200, b"hello from the server")
    seen = server.seen()
    assert [(r["method"], r["path"], r["body"]) for r in seen] == [
        ("POST", f"/redirect-{status}", b"again"), ("POST", "/echo", b"again"),
        ("POST", "/redirect-303", b"gone"), ("GET", "/hello", b"")]
    assert seen[1]["headers"]["content-type"] == "text/x-again"


def test_post_redirected_307_to_a_denied_host_is_not_resent(host_wasm, server):
    with make_plugin(host_wasm, ["127.0.0.1"]) as plugin:
        with pytest.raises(ef.CapabilityError) as info:
            fetch(plugin, server.url("/redirect-307-denied"), "POST", BODY_SECRET)
        message = str(info.value)
        assert "redirect" in message and "'localhost'" in message and "allowed_hosts" in message
        assert BODY_SECRET.decode() not in message
        assert fetch(plugin, server.url("/echo"), "POST", b"still usable")[:2] == (201, b"still usable")
    # the body went to the first hop only; nothing arrived under the denied name
    assert [(r["path"], r["host"], r["body"]) for r in server.seen()] == [
        ("/redirect-307-denied", f"127.0.0.1:{server.port}", BODY_SECRET),
        ("/echo", f"127.0.0.1:{server.port}", b"still usable")]


def test_credentials_dropped_on_redirect_to_another_host(host_wasm, server):
    with make_plugin(host_wasm, ["127.0.0.1", "localhost"]) as plugin:
        status, body, _ = fetch(plugin, server.url("/redirect-other-name"),
                                headers={"Authorization": f"Bearer {SECRET}", "X-Keep": "1"})
    assert status == 200
    seen = json.loads(body)
    assert seen["host"] == f"localhost:{server.port}"
    assert "authorization" not in seen and seen["x-keep"] == "1"


def test_userinfo_becomes_basic_auth(host_wasm, server):
    with make_plugin(host_wasm) as plugin:
        status, body, _ = fetch(plugin, f"http://user:p%40ss@127.0.0.1:{server.port}/echo-headers")
    assert status == 200
    expected = "Basic " + base64.b64encode(b"user:p@ss").decode()
    assert json.loads(body)["authorization"] == expected


def test_proxy_environment_is_ignored(host_wasm, server, monkeypatch):
    # A proxy from the environment would send the plugin's traffic to a host nobody allowed.
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")
    with make_plugin(host_wasm) as plugin:
        assert fetch(plugin, server.url("/hello"))[0] == 200
    assert len(server.seen()) == 1


# ---------------------------------------------------------------------------------------------
# denied requests: nothing reaches the server
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("allowed", [None, []])
def test_no_allowed_hosts_no_http(host_wasm, server, allowed):
    with make_plugin(host_wasm, allowed) as plugin:
        with pytest.raises(ef.CapabilityError) as info:
            fetch(plugin, server.url("/hello"))
        message = str(info.value)
        assert "HTTP is not allowed" in message
        assert "'127.0.0.1'" in message and "manifest.allowed_hosts" in message
        assert plugin.call("config_get", "x") == b"<none>"  # the plugin stays usable
    assert server.seen() == []


def test_a_plain_manifest_dict_s_allowed_hosts_grant_and_deny(host_wasm, server):
    """A manifest dict with allowed_hosts is a plain plugin (no Manifest made: manifest/plain.py)
    whose list reaches the HTTP check: its host is granted, another denied; the list mutated
    afterwards changes nothing."""
    from extism_fast.manifest.plain import PlainSource

    allowed = ["127.0.0.1"]
    with ef.Plugin({"wasm": [{"data": host_wasm}], "allowed_hosts": allowed}, functions=[]) as plugin:
        allowed[:] = ["localhost"]
        assert isinstance(plugin._options.manifest, PlainSource)
        assert plugin._options.allowed_hosts == ("127.0.0.1",)
        assert fetch(plugin, server.url("/hello"))[:2] == (200, b"hello from the server")
        with pytest.raises(ef.CapabilityError, match=r"host 'localhost' is not allowed.*allowed_hosts"):
            fetch(plugin, server.url("/hello", host="localhost"))
        assert plugin.compiled_plugin.manifest.allowed_hosts == ["127.0.0.1"]
    assert [req["host"] for req in server.seen()] == [f"127.0.0.1:{server.port}"]


def test_other_host_name_denied(host_wasm, server):
    with make_plugin(host_wasm, ["127.0.0.1"]) as plugin:
        with pytest.raises(ef.CapabilityError, match=r"host 'localhost' is not allowed.*allowed_hosts"):
            fetch(plugin, server.url("/hello", host="localhost"))
        with pytest.raises(ef.CapabilityError, match="'127.0.0.2'"):
            fetch(plugin, server.url("/hello", host="127.0.0.2"))
    assert server.seen() == []


def test_redirect_to_denied_host(host_wasm, server):
    with make_plugin(host_wasm, ["127.0.0.1"]) as plugin:
        with pytest.raises(ef.CapabilityError) as info:
            fetch(plugin, server.url("/redirect-denied"))
        message = str(info.value)
        assert "redirect" in message and "'localhost'" in message and "allowed_hosts" in message
        assert fetch(plugin, server.url("/hello"))[0] == 200
    # the first hop arrived; nothing ever arrived under the denied name
    assert [(r["path"], r["host"]) for r in server.seen()] == [
        ("/redirect-denied", f"127.0.0.1:{server.port}"), ("/hello", f"127.0.0.1:{server.port}")]


def test_many_set_cookie_lines_are_accepted(host_wasm, server):
    # 110 Set-Cookie lines, 113 header lines: the official runtime accepts them, http.client
    # alone stops at 100.
    with make_plugin(host_wasm, headers=True) as plugin:
        status, body, headers = fetch(plugin, server.url("/cookies?110"))
    assert (status, body) == (200, b"ok")
    cookies = json.loads(headers)["set-cookie"].split(", ")
    assert cookies == [f"c{i}={SECRET}" for i in range(110)]


def test_header_fields_past_the_limit_fail_naming_it(host_wasm, server):
    limit = efhttp.MAX_RESPONSE_HEADER_FIELDS
    assert limit == 128  # the official runtime's (test_compat.py measures it on both SDKs)
    extra = 3  # Server, Date, Content-Length
    with make_plugin(host_wasm) as plugin:
        assert fetch(plugin, server.url(f"/cookies?{limit - extra}"))[:2] == (200, b"ok")
        with pytest.raises(ef.CallError) as info:
            fetch(plugin, server.url(f"/cookies?{limit - extra + 1}"))
        message = str(info.value)
        assert f"more than {limit} header fields" in message and "header-count limit" in message
        assert SECRET not in message and "c0" not in message
        assert fetch(plugin, server.url("/hello"))[:2] == (200, b"hello from the server")


def test_the_header_limit_is_per_connection_not_http_client_wide(host_wasm, server):
    import http.client

    with make_plugin(host_wasm) as plugin:
        assert fetch(plugin, server.url("/cookies?110"))[0] == 200
    assert http.client._MAXHEADERS == 100
    # Other code using http.client in this process keeps http.client's own limit.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/cookies?110")
        with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
            conn.getresponse()
    finally:
        conn.close()


def test_redirect_loop_is_capped(host_wasm, server):
    with make_plugin(host_wasm) as plugin:
        with pytest.raises(ef.CallError, match=f"more than {efhttp.MAX_REDIRECTS} redirects"):
            fetch(plugin, server.url("/redirect-loop"))
    assert len(server.seen()) == efhttp.MAX_REDIRECTS + 1


def test_host_header_must_match_the_url(host_wasm, server):
    with make_plugin(host_wasm, ["127.0.0.1"]) as plugin:
        with pytest.raises(ef.CapabilityError, match="Host header"):
            fetch(plugin, server.url("/hello"), headers={"Host": "localhost"})
        # naming the URL's own host is fine
        assert fetch(plugin, server.url("/hello"), headers={"host": f"127.0.0.1:{server.port}"})[0] == 200
    assert len(server.seen()) == 1


def test_denials_never_show_secrets(host_wasm, server):
    headers = {"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET}
    url = f"http://localhost:{server.port}/hello?token={SECRET}"
    with make_plugin(host_wasm, ["127.0.0.1"]) as plugin:
        with pytest.raises(ef.CapabilityError) as info:
            fetch(plugin, url, "POST", BODY_SECRET, headers)
    assert SECRET not in str(info.value) and BODY_SECRET.decode() not in str(info.value)
    assert server.seen() == []


# ---------------------------------------------------------------------------------------------
# limits: time and size
# ---------------------------------------------------------------------------------------------


def test_slow_response_times_out_and_the_plugin_recovers(host_wasm, server):
    with make_plugin(host_wasm, timeout_ms=300) as plugin:
        start = time.monotonic()
        with pytest.raises(ef.TimeoutError, match="timed out"):
            fetch(plugin, server.url("/slow"), headers={"X-Api-Key": SECRET})
        assert time.monotonic() - start < 1.5
        assert fetch(plugin, server.url("/hello"))[:2] == (200, b"hello from the server")


def test_without_call_timeout_a_request_has_its_own_limit(host_wasm, server, monkeypatch):
    monkeypatch.setattr(efhttp, "DEFAULT_REQUEST_TIMEOUT_S", 0.3)
    with make_plugin(host_wasm) as plugin:
        start = time.monotonic()
        with pytest.raises(ef.CallError) as info:
            fetch(plugin, server.url("/slow"))
        assert time.monotonic() - start < 1.5
        # not the call's timeout: the call has none (it would read "timed out after 0 ms")
        assert not isinstance(info.value, ef.TimeoutError)
        assert "did not finish within 0.3 s" in str(info.value)
        assert fetch(plugin, server.url("/hello"))[0] == 200


def test_cancel_aborts_a_request_in_progress(host_wasm, server):
    with make_plugin(host_wasm) as plugin:
        handle = plugin.cancel_handle()
        timer = threading.Timer(0.2, handle.cancel)
        start = time.monotonic()
        timer.start()
        try:
            with pytest.raises(ef.CancelledError, match="cancelled"):
                fetch(plugin, server.url("/slow"))
        finally:
            timer.cancel()
        assert time.monotonic() - start < 1.5  # /slow answers after 2 s
        assert fetch(plugin, server.url("/hello"))[:2] == (200, b"hello from the server")


def test_a_cancelled_token_aborts_the_request_it_is_given_to(server):
    token = efhttp.RequestCancel()
    token.cancel()
    request = json.dumps({"url": server.url("/slow")}).encode()
    start = time.monotonic()
    with pytest.raises(ef.CancelledError, match="HTTP request to host '127.0.0.1' cancelled"):
        efhttp.perform_request(request, b"", allowed_hosts=["127.0.0.1"], max_response_bytes=1 << 20,
                               timeout_s=None, cancel=token)
    assert time.monotonic() - start < 1.5


@pytest.mark.parametrize("path", ["/big", "/big-no-length"])
def test_response_body_cap(host_wasm, server, path):
    with make_plugin(host_wasm, memory={"max_http_response_bytes": LIMIT}) as plugin:
        with pytest.raises(ef.MemoryLimitError, match=f"memory.max_http_response_bytes = {LIMIT}"):
            fetch(plugin, server.url(path))
        assert fetch(plugin, server.url("/exact"))[:2] == (200, b"z" * LIMIT)  # the limit itself fits


def test_timeout_already_used_up():
    with pytest.raises(ef.TimeoutError, match="no time is left"):
        perform_request(b'{"url": "http://127.0.0.1:1/"}', b"", allowed_hosts=["127.0.0.1"],
                        max_response_bytes=10, timeout_s=0.0)
    # a denial is still reported as a denial
    with pytest.raises(ef.CapabilityError):
        perform_request(b'{"url": "http://127.0.0.1:1/"}', b"", allowed_hosts=[],
                        max_response_bytes=10, timeout_s=0.0)


# ---------------------------------------------------------------------------------------------
# failures: bad requests and network errors
# ---------------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_names_the_host(host_wasm, server):
    port = _closed_port()
    with make_plugin(host_wasm) as plugin:
        with pytest.raises(ef.CallError) as info:
            fetch(plugin, f"http://127.0.0.1:{port}/x", headers={"X-Api-Key": SECRET})
        message = str(info.value)
        assert type(info.value) is ef.CallError  # a host-side failure, not a plugin trap
        assert "'127.0.0.1'" in message and "refused" in message.lower()
        assert SECRET not in message
        assert fetch(plugin, server.url("/hello"))[0] == 200


@pytest.mark.parametrize(
    "request_json, problem",
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b"{}", '"url"'),
        (b'{"url": 5}', '"url"'),
        (b'{"url": "http://127.0.0.1/", "method": "GE T"}', '"method"'),
        (b'{"url": "http://127.0.0.1/", "method": 1}', '"method"'),
        (b'{"url": "http://127.0.0.1/", "headers": []}', '"headers"'),
        (b'{"url": "http://127.0.0.1/", "headers": {"X-Key": 1}}', "'X-Key' must be a string"),
        (b'{"url": "http://127.0.0.1/", "headers": {"X-Key": "a\\r\\nX-Evil: 1"}}', "CR, LF"),
        (b'{"url": "http://127.0.0.1/", "headers": {"Bad Name": "v"}}', "header name"),
        (b'{"url": "file:///etc/passwd"}', "only http:// and https://"),
        (b'{"url": "gopher://127.0.0.1/"}', "only http:// and https://"),
        (b'{"url": "http:///nohost"}', "no host"),
        (b'{"url": "http://127.0.0.1:99999/"}', "invalid URL"),
        (b'{"url": "http://127.0.0.1/a b"}', "invalid URL"),
    ],
)
def test_invalid_requests(request_json, problem):
    with pytest.raises(ef.CallError) as info:
        perform_request(request_json, b"", allowed_hosts=["*"], max_response_bytes=10, timeout_s=1.0)
    assert not isinstance(info.value, ef.CapabilityError)
    assert problem in str(info.value)


def test_invalid_request_through_a_plugin(host_wasm, server):
    bad = b"{oops"
    with make_plugin(host_wasm) as plugin:
        with pytest.raises(ef.CallError, match="not valid JSON"):
            plugin.call("http_request", struct.pack("<Q", len(bad)) + bad)
        assert fetch(plugin, server.url("/hello"))[0] == 200


def test_header_value_never_in_invalid_header_message():
    request = json.dumps({"url": "http://127.0.0.1/", "headers": {"X-Key": SECRET + "\n"}}).encode()
    with pytest.raises(ef.CallError) as info:
        perform_request(request, b"", allowed_hosts=["*"], max_response_bytes=10, timeout_s=1.0)
    assert "X-Key" in str(info.value) and SECRET not in str(info.value)


# ---------------------------------------------------------------------------------------------
# the matcher and the policy, without a server
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, host, expected",
    [
        ("example.com", "example.com", True),
        ("example.com", "EXAMPLE.COM", True),
        ("Example.COM", "example.com", True),
        ("example.com", "example.com.", True),
        ("example.com", "www.example.com", False),
        ("example.com", "example.com.evil.net", False),
        ("example.com", "badexample.com", False),
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "badexample.com", False),
        ("*.example.com", "example.com.evil.net", False),
        ("*.example.com", "a.example.com.evil.net", False),
        ("*example.com", "badexample.com", True),  # exactly what is written
        ("api-?.example.com", "api-1.example.com", True),
        ("api-?.example.com", "api-10.example.com", False),
        ("api-[ab].example.com", "api-b.example.com", True),
        ("api-[!ab].example.com", "api-b.example.com", False),
        ("*", "anything.at.all", True),
        ("*", "127.0.0.1", True),
        ("*", "::1", True),
        ("", "example.com", False),
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.2", False),
        ("127.0.0.*", "127.0.0.9", True),
        ("::1", "::1", True),
        ("[::1]", "0:0:0:0:0:0:0:1", True),
        ("::1", "127.0.0.1", False),
        ("bücher.example", "xn--bcher-kva.example", True),
        ("*.bücher.example", "www.BÜCHER.example", True),
        ("xn--bcher-kva.example", "bücher.example", True),
    ],
)
def test_host_matches(pattern, host, expected):
    assert host_matches(pattern, host) is expected


def test_host_allowed_empty_list_allows_nothing():
    assert not host_allowed("example.com", [])
    assert not host_allowed("example.com", ())
    assert host_allowed("a.example.com", ["x.org", "*.example.com"])


@pytest.mark.parametrize(
    "url, host",
    [
        ("http://example.com.evil.net/", "example.com.evil.net"),
        ("http://evil.net/example.com", "evil.net"),
        ("http://example.com@evil.net/", "evil.net"),
        ("http://example.com:80@evil.net/", "evil.net"),
        ("https://user:example.com@evil.net:8443/example.com?h=example.com#example.com", "evil.net"),
        ("http://EVIL.net./", "evil.net"),
        ("http://evil.net?example.com", "evil.net"),
        ("http://evil.net#@example.com", "evil.net"),
    ],
)
def test_evil_urls_are_checked_on_the_parsed_host(url, host):
    request = json.dumps({"url": url, "headers": {"X-Api-Key": SECRET}}).encode()
    with pytest.raises(ef.CapabilityError) as info:
        perform_request(request, BODY_SECRET, allowed_hosts=["example.com", "*.example.com"],
                        max_response_bytes=10, timeout_s=1.0)
    message = str(info.value)
    assert f"host '{host}' is not allowed" in message
    assert SECRET not in message and BODY_SECRET.decode() not in message


@pytest.mark.parametrize("url", ["http://evil.net\\@example.com/", "http://example.com\t.evil.net/",
                                 "http://exa mple.com/", "http://ex%61mple.com/"])
def test_ambiguous_urls_are_refused(url):
    request = json.dumps({"url": url}).encode()
    with pytest.raises(ef.CallError, match="invalid URL"):
        perform_request(request, b"", allowed_hosts=["example.com"], max_response_bytes=10, timeout_s=1.0)


def test_normalize_host():
    assert normalize_host("Example.COM.") == "example.com"
    assert normalize_host("bücher.example") == "xn--bcher-kva.example"
    assert normalize_host("[0:0::1]") == "::1"
    for bad in ("", "a..b", "a b", "ex%61mple.com", "a/b"):
        with pytest.raises(ValueError):
            normalize_host(bad)


def test_http_result_headers_json():
    result = HttpResult(200, {"content-type": "text/plain", "x-ü": "ä"}, b"")
    assert json.loads(result.headers_json().decode("utf-8")) == {"content-type": "text/plain", "x-ü": "ä"}
    assert HttpResult(204).headers_json() == b"{}"


def test_http_result_is_an_immutable_value():
    """Compared by status, headers and body (not the reason phrase); immutable; unhashable (its
    headers are a dict); its repr names every field."""
    result = HttpResult(200, {"a": "b"}, b"x", "OK")
    assert result == HttpResult(200, {"a": "b"}, b"x", "Fine") and result != HttpResult(201, {"a": "b"}, b"x")
    assert result != (200, {"a": "b"}, b"x", "OK") and HttpResult(204) == HttpResult(204, {}, b"", "")
    assert repr(result) == "HttpResult(status=200, headers={'a': 'b'}, body=b'x', reason='OK')"
    for name in ("status", "headers", "body", "reason", "other"):
        with pytest.raises(AttributeError):
            setattr(result, name, 1)
        with pytest.raises(AttributeError):
            delattr(result, name)
    with pytest.raises(TypeError):
        hash(result)
    assert (result.status, result.headers, result.body, result.reason) == (200, {"a": "b"}, b"x", "OK")


def test_perform_request_directly(server):
    result = perform_request(json.dumps({"url": server.url("/hello")}).encode(), b"",
                             allowed_hosts=["127.0.0.1"], max_response_bytes=1000, timeout_s=2.0)
    assert (result.status, result.body, result.headers["x-custom"]) == (200, b"hello from the server", "yes")
    result = perform_request(json.dumps({"url": server.url("/echo"), "method": "post"}).encode(), b"abc",
                             allowed_hosts=["127.0.0.1"], max_response_bytes=1000, timeout_s=None)
    assert (result.status, result.body) == (201, b"abc")


def test_https_to_a_plain_http_server_is_a_tls_error(host_wasm, server):
    with make_plugin(host_wasm) as plugin:
        with pytest.raises(ef.CallError) as info:
            fetch(plugin, f"https://127.0.0.1:{server.port}/hello")
        assert not isinstance(info.value, (ef.CapabilityError, ef.TimeoutError))
        assert "'127.0.0.1'" in str(info.value) and "TLS" in str(info.value)
        assert fetch(plugin, server.url("/hello"))[0] == 200


@pytest.fixture
def raw_server():
    """raw_server(reply) -> port of a socket that answers every request with ``reply`` bytes."""
    listeners = []

    def start(reply: bytes) -> int:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        listeners.append(sock)

        def serve():
            while True:
                try:
                    conn, _ = sock.accept()
                except OSError:
                    return
                with conn:
                    conn.recv(65536)
                    conn.sendall(reply)

        threading.Thread(target=serve, daemon=True).start()
        return sock.getsockname()[1]

    yield start
    for sock in listeners:
        sock.close()


@pytest.mark.parametrize(
    "reply, reason",
    [
        (b"", "closed the connection without a response"),
        (f"NOT-HTTP {SECRET}\r\n\r\n".encode(), "invalid HTTP response (BadStatusLine)"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "before the whole response body arrived"),
    ],
)
def test_broken_servers(raw_server, reply, reason):
    port = raw_server(reply)
    request = json.dumps({"url": f"http://127.0.0.1:{port}/", "headers": {"X-Api-Key": SECRET}}).encode()
    with pytest.raises(ef.CallError) as info:
        perform_request(request, b"", allowed_hosts=["127.0.0.1"], max_response_bytes=100, timeout_s=2.0)
    assert "'127.0.0.1'" in str(info.value) and reason in str(info.value)
    assert SECRET not in str(info.value)  # not even when the server echoes it back


# ---------------------------------------------------------------------------------------------
# URLs in messages: redacted (shared by http_request and the manifest's URL sources)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, shown",
    [
        (f"https://user:{SECRET}@example.com:8443/a/b.wasm?access_token={SECRET}#{SECRET}", "https://example.com:8443/a/b.wasm"),
        (f"http://127.0.0.1:{SECRET}/p?x=1", "http://127.0.0.1/p"),  # an unparseable port is not shown
        (f"http://user:{SECRET}", "http://user"),  # no "@": the password parses as the port
        (f"http://[::1]:99999/p?{SECRET}", "http://[::1]/p"),
        (f"http://u:{SECRET}@[::1/p", "<a URL that cannot be parsed>"),
        ("file:///etc/passwd", "file:///etc/passwd"),
        ("https://registry.example/@scope/pkg.wasm", "https://registry.example/@scope/pkg.wasm"),
        # no network location: an "@" may end credentials that were not parsed as such
        (f"http:user:{SECRET}@example.com/a.wasm", "<a URL without a host (not shown: it may hold credentials)>"),
        (f"ht!tp://user:{SECRET}@example.com/", "<a URL without a host (not shown: it may hold credentials)>"),
        ("example.com/a.wasm", "example.com/a.wasm"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "url, shown",
    [
        (f"http://127.0.0.1:{SECRET}/path?access_token={SECRET}", "'http://127.0.0.1/path'"),
        (f"http://user:{SECRET}@127.0.0.1:x{SECRET}/p", "'http://127.0.0.1/p'"),
        (f"http://user:{SECRET}/p", "'http://user/p'"),
        ("http://127.0.0.1:99999/p", "'http://127.0.0.1/p'"),
    ],
)
def test_http_request_bad_port_message_is_redacted(url, shown):
    request = json.dumps({"url": url}).encode()
    with pytest.raises(ef.CallError) as info:
        perform_request(request, b"", allowed_hosts=["*"], max_response_bytes=10, timeout_s=1.0)
    message = str(info.value)
    assert message == f"invalid URL {shown}: the port is not a number from 1 to 65535"
    assert SECRET not in message


def test_http_request_unparseable_host_never_quotes_the_url():
    # urlsplit's own message would quote the whole network location, password included
    request = json.dumps({"url": f"http://user:{SECRET}@exa\uff0fmple.com/"}).encode()
    with pytest.raises(ef.CallError) as info:
        perform_request(request, b"", allowed_hosts=["*"], max_response_bytes=10, timeout_s=1.0)
    assert str(info.value) == "invalid URL: its host part cannot be parsed"


def test_http_request_bad_port_through_a_plugin_is_redacted(host_wasm):
    with make_plugin(host_wasm) as plugin:
        with pytest.raises(ef.CallError) as info:
            fetch(plugin, f"http://127.0.0.1:{SECRET}/x?access_token={SECRET}")
    assert "invalid URL 'http://127.0.0.1/x'" in str(info.value) and SECRET not in str(info.value)


# ---------------------------------------------------------------------------------------------
# the manifest's URL sources (WasmUrl), fetched from the same server
# ---------------------------------------------------------------------------------------------


def load_url(url: str, **kwargs) -> bytes:
    return Manifest([WasmUrl(url, **kwargs)]).load_modules()[0].data


def test_wasm_url_userinfo_becomes_basic_auth_not_a_host_name(server):
    echoed = json.loads(load_url(f"http://user:p%40ss@127.0.0.1:{server.port}/echo-headers?x=1"))
    assert echoed["authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()
    assert echoed["host"] == f"127.0.0.1:{server.port}"  # the credentials were not part of the host
    assert [r["path"] for r in server.seen()] == ["/echo-headers?x=1"]


def test_wasm_url_own_authorization_header_wins_over_userinfo(server):
    echoed = json.loads(load_url(f"http://user:pw@127.0.0.1:{server.port}/echo-headers",
                                 headers={"authorization": "Bearer mine"}))
    assert echoed["authorization"] == "Bearer mine"


def test_wasm_url_fetch_failures_are_redacted(server):
    url = f"http://user:{SECRET}@127.0.0.1:{server.port}/unknown?access_token={SECRET}"
    with pytest.raises(ef.ManifestError) as info:
        load_url(url, headers={"X-Api-Key": SECRET})
    message = str(info.value)
    assert message == f"manifest.wasm[0].url: cannot fetch 'http://127.0.0.1:{server.port}/unknown': HTTP 500 Internal Server Error"
    port = _closed_port()
    with pytest.raises(ef.ManifestError) as info:
        load_url(f"http://user:{SECRET}@127.0.0.1:{port}/m.wasm?access_token={SECRET}")
    message = str(info.value)
    assert message.startswith(f"manifest.wasm[0].url: cannot fetch 'http://127.0.0.1:{port}/m.wasm': ")
    assert "refused" in message.lower() and SECRET not in message and "user" not in message


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/m.wasm", "FILE:/etc/passwd",
                                    "data:,hello"])
def test_wasm_url_redirect_to_another_scheme_is_refused(server, target):
    with pytest.raises(ef.ManifestError) as info:
        load_url(server.url("/redirect-to?" + quote(target, safe="")))
    scheme = target.split(":")[0].lower()
    assert str(info.value) == (
        f"manifest.wasm[0].url: cannot fetch '{server.url('/redirect-to')}': HTTP 302 redirects to a "
        f"'{scheme}' URL: only http:// and https:// redirects are followed"
    )
    assert len(server.seen()) == 1


def test_wasm_url_redirects_keep_credentials_only_within_the_origin(server, other_server):
    headers = {"Authorization": f"Bearer {SECRET}", "Cookie": f"session={SECRET}", "X-Keep": "1"}
    same = json.loads(load_url(server.url("/redirect-to?" + quote("/echo-headers", safe="")), headers=headers))
    assert same["authorization"] == f"Bearer {SECRET}" and same["cookie"] == f"session={SECRET}"
    elsewhere = quote(other_server.url("/echo-headers"), safe="")
    other = json.loads(load_url(server.url("/redirect-to?" + elsewhere), headers=headers))
    assert "authorization" not in other and "cookie" not in other and other["x-keep"] == "1"
    # credentials from the URL's userinfo count as the user's too
    userinfo = f"http://user:{SECRET}@127.0.0.1:{server.port}/redirect-to?{elsewhere}"
    assert "authorization" not in json.loads(load_url(userinfo))
