"""The network side of web documents: which addresses a page may reach, and a fetcher that enforces it.

Every request of a web page (the document itself, frames, styles, images, scripts, XHR) is made here, not by
the browser: the browser's requests are intercepted and answered with what this module fetched. That is what
makes the checks hold: a hostname is resolved once, every address it resolves to is checked, and the
connection goes to a checked address (no second lookup a DNS-rebinding server could answer differently).
Redirects are followed here hop by hop, each hop checked the same way.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import urljoin, urlsplit

__all__ = [
    "AddressPolicy",
    "BlockReason",
    "Blocked",
    "FetchBudget",
    "Response",
    "fetch",
]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# request headers the fetcher sets itself (or that make no sense across the interception)
_DROP_REQUEST = frozenset({
    "host", "connection", "keep-alive", "accept-encoding", "content-length", "transfer-encoding", "te", "trailer",
    "upgrade", "proxy-authorization", "proxy-connection",
})


class BlockReason(str, Enum):
    """Why a request of a web page was not made (or not finished)."""

    FILE_ACCESS = "file-access"
    SCHEME = "scheme"
    PRIVATE_ADDRESS = "private-address"
    MAX_BYTES = "max-bytes"
    MAX_REQUESTS = "max-requests"
    TIMEOUT = "timeout"
    NAVIGATION = "navigation"
    POPUP = "popup"
    DOWNLOAD = "download"
    WEBSOCKET = "websocket"
    AFTER_CAPTURE = "after-capture"
    NETWORK_ERROR = "network-error"


class Blocked(Exception):
    """A request refused by the policy or budget, or one that failed; ``reason`` says which."""

    def __init__(self, reason: BlockReason, detail: str, url: str) -> None:
        super().__init__(f"{reason.value}: {detail} ({url})")
        self.reason = reason
        self.detail = detail
        self.url = url


def _kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What makes ``ip`` off-limits, or ``None`` for a public unicast address."""
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


def _unwrap(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), else ``ip`` itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.teredo is not None:
            return ip.teredo[1]
        if ip in ipaddress.IPv6Network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


_DEFAULT_PORTS = {"http": 80, "https": 443}
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class _Rule:
    """One ``allow`` entry: which hosts (a name or a network), and on which scheme and port."""

    text: str
    name: str | None
    network: _Network | None
    scheme: str | None  # None: http or https
    port: int | None  # None: a bare entry (the default ports, and the port of the page's own URL)

    @classmethod
    def parse(cls, entry: str) -> _Rule:
        text = entry.strip()
        scheme: str | None = None
        port: int | None = None
        host = text
        if "://" in text:
            parts = urlsplit(text)
            scheme = parts.scheme.lower()
            if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") or parts.query:
                raise ValueError(f"allow_hosts entry {entry!r}: write an origin like 'http://host:8000'")
            host = parts.hostname
            try:
                port = parts.port or _DEFAULT_PORTS[scheme]
            except ValueError:
                raise ValueError(f"allow_hosts entry {entry!r} has a bad port") from None
        elif text.startswith("[") and "]:" in text:
            host, _, raw = text[1:].partition("]:")
            port = cls._port(raw, entry)
        elif text.count(":") == 1 and "/" not in text:
            host, _, raw = text.partition(":")
            port = cls._port(raw, entry)
        host = host.strip("[]")
        try:
            network = ipaddress.ip_network(host, strict=False)
        except ValueError:
            network = None
        if network is not None:
            if isinstance(network, ipaddress.IPv6Network) and network.num_addresses == 1:
                inner = _unwrap(network.network_address)  # "::ffff:127.0.0.1" names 127.0.0.1
                if isinstance(inner, ipaddress.IPv4Address):
                    network = ipaddress.IPv4Network(inner)
            return cls(text, None, network, scheme, port)
        if not host:
            raise ValueError(f"allow_hosts entry {entry!r} has no host")
        return cls(text, host.lower().rstrip("."), None, scheme, port)

    @staticmethod
    def _port(raw: str, entry: str) -> int:
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            raise ValueError(f"allow_hosts entry {entry!r} has a bad port")
        return int(raw)

    def covers_host(self, host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
                    inner: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if self.name is not None:
            return host.lower().rstrip(".") == self.name
        assert self.network is not None
        return ip in self.network or inner in self.network

    def covers_port(self, scheme: str, port: int, page: tuple[str, int] | None) -> bool:
        if self.port is not None:
            return port == self.port and (self.scheme is None or scheme == self.scheme)
        return port == _DEFAULT_PORTS.get(scheme) or (scheme, port) == page


@dataclass(frozen=True)
class AddressPolicy:
    """Which hosts a page may reach: public addresses, plus the scheme / host / port combinations in ``allow``.

    An ``allow`` entry is an origin (``"http://127.0.0.1:8000"``: that scheme, host and port only), a host and port
    (``"127.0.0.1:8000"``, ``"[::1]:8000"``: http or https on that port), or a bare hostname (matched exactly,
    case-insensitive), IP address or CIDR network. A bare entry allows its hosts on the default ports (80 for
    http, 443 for https) and on the scheme and port of the page's own URL (``page``), no other: allowing
    ``127.0.0.1`` for a page at ``http://127.0.0.1:8000/`` does not let the page (or a redirect) reach another
    service on ``127.0.0.1:9000``.
    """

    allow: tuple[str, ...] = ()
    allow_private_network: bool = False
    page: tuple[str, int] | None = None
    _rules: tuple[_Rule, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rules", tuple(_Rule.parse(entry) for entry in self.allow))

    @staticmethod
    def origin_of(url: str | None) -> tuple[str, int] | None:
        """``(scheme, port)`` of an http(s) URL, the ``page`` a policy for it is pinned to."""
        if not url:
            return None
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            return None
        try:
            return scheme, parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            return None

    def refusal(self, host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, scheme: str = "http",
                port: int | None = None) -> str | None:
        """Why connecting to ``ip`` (which ``host`` resolved to) on ``scheme``/``port`` is refused, or ``None``."""
        if self.allow_private_network:
            return None
        port = _DEFAULT_PORTS.get(scheme, 80) if port is None else port
        inner = _unwrap(ip)
        near: _Rule | None = None
        for rule in self._rules:
            if rule.covers_host(host, ip, inner):
                if rule.covers_port(scheme, port, self.page):
                    return None
                near = near or rule
        kind = _kind(inner) or _kind(ip)
        if kind is None:  # a public address: open on every port
            return None
        shown = str(ip) if inner == ip else f"{ip} ({inner})"
        via = "" if host.strip("[]") == str(ip) else f"{host} resolves to "
        article = "an" if kind[0] in "aeiou" else "a"
        if near is not None:
            return (f"{via}{shown}, {article} {kind} address, on {scheme} port {port}, which the allow_hosts entry "
                    f"{near.text!r} does not cover (allow it as '{host}:{port}')")
        return f"{via}{shown}, {article} {kind} address"

    def resolve(self, url: str) -> tuple[str, int, list[str]]:
        """``(host, port, addresses)`` of ``url``, every address checked.

        Raises:
            Blocked: the scheme is not http(s), the host cannot be resolved, or an address is refused.
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "file":
            raise Blocked(BlockReason.FILE_ACCESS, "pages may not read local files", url)
        if scheme not in ("http", "https"):
            raise Blocked(BlockReason.SCHEME, f"the scheme {scheme or '(none)'!r} is not allowed", url)
        host = parts.hostname
        if not host:
            raise Blocked(BlockReason.SCHEME, "the URL has no host", url)
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise Blocked(BlockReason.SCHEME, "the URL has a bad port", url) from None
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError, ValueError) as exc:
                raise Blocked(BlockReason.NETWORK_ERROR, f"cannot resolve {host} ({exc})", url) from None
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        # every address must pass: a host resolving to a public and a private address is refused
        for address in addresses:
            why = self.refusal(host, ipaddress.ip_address(address.split("%", 1)[0]), scheme, port)
            if why is not None:
                raise Blocked(BlockReason.PRIVATE_ADDRESS, why, url)
        return host, port, addresses


class FetchBudget:
    """What a page may still spend: bytes, requests and time, shared by all its requests (thread-safe)."""

    def __init__(self, *, max_bytes: int, max_requests: int, timeout_s: float) -> None:
        self.max_bytes = max_bytes
        self.max_requests = max_requests
        self.deadline = time.monotonic() + timeout_s
        self.bytes = 0
        self.requests = 0
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def take_request(self, url: str) -> None:
        with self._lock:
            if self.requests >= self.max_requests:
                raise Blocked(BlockReason.MAX_REQUESTS, f"the page made more than {self.max_requests} requests", url)
            self.requests += 1

    def take_bytes(self, n: int, url: str) -> None:
        with self._lock:
            if self.bytes + n > self.max_bytes:
                self.bytes = self.max_bytes
                raise Blocked(BlockReason.MAX_BYTES, f"the page downloaded more than {self.max_bytes:,} bytes", url)
            self.bytes += n


@dataclass
class Response:
    """A response as the page gets it: the final URL after redirects, status, headers and the whole body."""

    url: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    redirects: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


def _fetch_once(url: str, method: str, headers: Iterable[tuple[str, str]], body: bytes | None,
                policy: AddressPolicy, budget: FetchBudget, per_request_s: float) -> Response:
    host, port, addresses = policy.resolve(url)
    budget.take_request(url)
    timeout = min(per_request_s, budget.remaining())
    if timeout <= 0:
        raise Blocked(BlockReason.TIMEOUT, "the page's time budget is spent", url)
    parts = urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme.lower() == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def connect(_address: tuple[str, int], timeout: float | None = None, source: object = None) -> socket.socket:
        # connect to the addresses checked above, never to a fresh lookup of the name
        error: OSError | None = None
        for address in addresses:
            try:
                return socket.create_connection((address, port), timeout=timeout)
            except OSError as exc:
                error = exc
        assert error is not None
        raise error

    conn._create_connection = connect  # type: ignore[attr-defined]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    send = {k: v for k, v in headers if k.lower() not in _DROP_REQUEST and not k.startswith(":")}
    send["Accept-Encoding"] = "identity"
    send["Connection"] = "close"
    resp: http.client.HTTPResponse | None = None
    try:
        conn.request(method, target, body=body, headers=send)
        resp = conn.getresponse()
        chunks: list[bytes] = []
        while True:
            if budget.remaining() <= 0:
                raise Blocked(BlockReason.TIMEOUT, "the page's time budget ran out during the download", url)
            chunk = resp.read(65536)
            if not chunk:
                break
            budget.take_bytes(len(chunk), url)
            chunks.append(chunk)
        return Response(url, resp.status, resp.reason, list(resp.getheaders()), b"".join(chunks))
    except Blocked:
        raise
    except TimeoutError:
        raise Blocked(BlockReason.TIMEOUT, f"no answer within {timeout:.1f} s", url) from None
    except (OSError, http.client.HTTPException, ssl.SSLError, ValueError) as exc:
        raise Blocked(BlockReason.NETWORK_ERROR, f"{type(exc).__name__}: {exc}", url) from None
    finally:
        if resp is not None:
            resp.close()
        conn.close()


def fetch(url: str, *, policy: AddressPolicy, budget: FetchBudget, method: str = "GET",
          headers: Sequence[tuple[str, str]] = (), body: bytes | None = None, max_redirects: int = 10,
          per_request_s: float = 20.0) -> Response:
    """Fetch ``url`` for a page, following redirects; every hop is checked against ``policy``.

    Raises:
        Blocked: a hop is refused, a budget is exceeded, or the request failed.
    """
    hops: list[str] = []
    for _ in range(max_redirects + 1):
        resp = _fetch_once(url, method, headers, body, policy, budget, per_request_s)
        location = resp.header("location")
        if resp.status not in _REDIRECTS or not location:
            resp.redirects = hops
            return resp
        hops.append(url)
        url = urljoin(url, location.strip())
        if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
            method, body = "GET", None
    raise Blocked(BlockReason.NETWORK_ERROR, f"more than {max_redirects} redirects", url)
