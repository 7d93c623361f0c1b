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


@dataclass(frozen=True)
class AddressPolicy:
    """Which hosts a page may reach: public addresses, plus the hosts and networks in ``allow``.

    ``allow`` holds hostnames (matched exactly, case-insensitive), IP addresses and CIDR networks.
    """

    allow: tuple[str, ...] = ()
    allow_private_network: bool = False
    _names: frozenset[str] = field(init=False, repr=False, compare=False)
    _networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names, nets = set(), []
        for entry in self.allow:
            try:
                nets.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.add(entry.lower().rstrip("."))
        object.__setattr__(self, "_names", frozenset(names))
        object.__setattr__(self, "_networks", tuple(nets))

    def refusal(self, host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        """Why connecting to ``ip`` (which ``host`` resolved to) is refused, or ``None`` when it is allowed."""
        if self.allow_private_network or host.lower().rstrip(".") in self._names:
            return None
        inner = _unwrap(ip)
        if any(ip in net or inner in net for net in self._networks):
            return None
        kind = _kind(inner) or _kind(ip)
        if kind is None:
            return None
        shown = str(ip) if inner == ip else f"{ip} ({inner})"
        via = "" if host.strip("[]") == str(ip) else f"{host} resolves to "
        return f"{via}{shown}, a {kind} address"

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
            except (socket.gaierror, UnicodeError) as exc:
                raise Blocked(BlockReason.NETWORK_ERROR, f"cannot resolve {host} ({exc})", url) from None
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        # every address must pass: a host resolving to a public and a private address is refused
        for address in addresses:
            why = self.refusal(host, ipaddress.ip_address(address.split("%", 1)[0]))
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
