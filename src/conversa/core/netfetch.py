"""The one way the server fetches a URL it was given (media links from providers' payloads):
guarded against server-side request forgery.

Each hop (the first request and every redirect, followed here by hand up to a bound) must be
http or https and its host must resolve only to public addresses; the request then connects to
the very address that was checked (the URL's host is replaced by the IP, with the Host header
and TLS SNI/certificate check kept on the name), so a second DNS answer cannot swap it for an
internal one. The body is streamed and cut off past `max_bytes` or the overall time limit.

CONVERSA_FETCH_ALLOWED_HOSTS ("host" or "host:port" entries) skips the address check for those
hosts: for tests, whose fake providers listen on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from django.conf import settings

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
# Cloud metadata services (IPv4 link-local and AWS's IPv6 one), named for clarity: both are
# already refused as link-local / private.
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})


class FetchRefused(Exception):
    """Permanent: the URL may not be fetched (scheme, address, size, redirects)."""


class FetchFailed(Exception):
    """Transient: DNS or network trouble, a timeout; worth retrying later."""


@dataclass
class Fetched:
    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str  # the last hop's URL

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


def is_forbidden_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (address in METADATA_ADDRESSES or address.is_loopback or address.is_private
            or address.is_link_local or address.is_multicast or address.is_reserved
            or address.is_unspecified or not address.is_global)


def _default_port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def _is_allowed_host(host: str, port: int) -> bool:
    names = {host.lower(), f"{host.lower()}:{port}", f"[{host.lower()}]:{port}"}
    return any(entry.strip().lower() in names for entry in settings.CONVERSA_FETCH_ALLOWED_HOSTS)


def vetted_address(url: httpx.URL) -> str:
    """The IP address to connect to for `url`, or FetchRefused/FetchFailed."""
    if url.scheme not in ("http", "https"):
        raise FetchRefused(f"Only http and https URLs are fetched, not {url.scheme or 'this'!r}.")
    host = url.host
    if not host:
        raise FetchRefused("The URL has no host.")
    port = _default_port(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchFailed(f"Cannot resolve {host}: {exc}") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise FetchFailed(f"Cannot resolve {host}.")
    if not _is_allowed_host(host, port):
        # Every answer must be public: a name resolving to one public and one internal address
        # is refused rather than trusted to the order of the answers.
        forbidden = [a for a in addresses if is_forbidden_address(a)]
        if forbidden:
            raise FetchRefused(f"{host} resolves to a non-public address ({forbidden[0]}): not fetched.")
    return str(addresses[0])


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, url.host, _default_port(url)


def fetch(url: str, *, max_bytes: int, headers: Mapping[str, str] | None = None,
          timeout: float | None = None, max_redirects: int = 5) -> Fetched:
    """GET `url` under the rules above. `headers` (credentials) go only to the first hop's origin.
    Non-2xx answers are returned (bodies capped too), for the caller to judge."""
    per_operation = timeout if timeout is not None else settings.PROVIDER_HTTP_TIMEOUT
    deadline = time.monotonic() + settings.CONVERSA_FETCH_TOTAL_TIMEOUT
    try:
        current = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise FetchRefused(f"Not a valid URL: {exc}") from exc
    first_origin = _origin(current)
    # No connection reuse: each hop connects to its own vetted address with its own SNI.
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=per_operation, limits=limits) as client:
        for _hop in range(max_redirects + 1):
            address = vetted_address(current)
            hop_headers = dict(headers or {}) if _origin(current) == first_origin else {}
            hop_headers["Host"] = current.netloc.decode("ascii")
            extensions = {"sni_hostname": current.host} if current.scheme == "https" else {}
            request = client.build_request("GET", current.copy_with(host=address), headers=hop_headers,
                                           extensions=extensions)
            try:
                response = client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise FetchFailed(f"Fetching {current.host} failed: {exc}") from exc
            try:
                location = response.headers.get("location")
                if response.status_code in REDIRECT_CODES and location:
                    try:
                        current = current.join(location)
                    except httpx.InvalidURL as exc:
                        raise FetchRefused(f"Bad redirect location: {exc}") from exc
                    continue
                return Fetched(response.status_code, response.headers,
                               _read_capped(response, max_bytes=max_bytes, deadline=deadline), str(current))
            finally:
                response.close()
    raise FetchRefused(f"More than {max_redirects} redirects: not followed.")


def _read_capped(response: httpx.Response, *, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchRefused(f"The file is too big ({int(declared)} bytes; at most {max_bytes}).")
    body = bytearray()
    try:
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise FetchRefused(f"The file is too big (over {max_bytes} bytes).")
            if time.monotonic() > deadline:
                raise FetchFailed("The download took too long.")
    except httpx.HTTPError as exc:
        raise FetchFailed(f"The download broke off: {exc}") from exc
    return bytes(body)
