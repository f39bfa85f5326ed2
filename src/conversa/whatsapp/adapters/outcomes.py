"""What a failed provider call means for a send: may it be repeated? Vendor-neutral; the adapters
add their vendor's documented codes (docs/decisions.md #39).

A send is repeated automatically only when the request provably never reached the provider, or
the provider said it did not process it. Everything else that is not a clear refusal is
*ambiguous*: the provider may have accepted the message, so sending again could give the customer
the same reply twice; the message is left unconfirmed for the status callback to reconcile.
"""

from __future__ import annotations

from typing import TypedDict

import httpx

from conversa.whatsapp.adapters.base import SendError

# The request never left this machine: no connection was made (refused, DNS, TLS handshake,
# connect timeout) or none was free in the pool.
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
# HTTP statuses that mean "not processed, try later" for any provider: 429 (rate limited) and 503
# (unavailable). Other 5xx (500, 502, 504...) may come after the provider acted: ambiguous unless
# the vendor documents the code in the body as not processed.
NOT_PROCESSED_STATUSES = {429, 503}


def transport_error(exc: httpx.HTTPError, *, vendor: str, idempotent: bool = False) -> SendError:
    """The SendError for an exception raised by httpx. `idempotent` calls (GETs) are always safe to
    repeat; a send is retryable only when it never left (ReadTimeout, ReadError,
    RemoteProtocolError, write errors and anything unknown may follow a written request)."""
    if idempotent or isinstance(exc, NEVER_SENT):
        return SendError(f"{vendor} unreachable: {exc}", code="network", retryable=True)
    return SendError(f"{vendor} did not confirm the send ({type(exc).__name__}): {exc}", code="no-answer",
                     ambiguous=True)


class Outcome(TypedDict):
    retryable: bool
    ambiguous: bool


def status_outcome(status_code: int, *, not_processed: bool = False, idempotent: bool = False) -> Outcome:
    """SendError flags for an HTTP error answer: `retryable` for 429/503, a vendor code documented
    as not processed (`not_processed`) or any 5xx of an `idempotent` call; `ambiguous` for any
    other 5xx; a 4xx is a refusal."""
    if not_processed or status_code in NOT_PROCESSED_STATUSES or (idempotent and status_code >= 500):
        return Outcome(retryable=True, ambiguous=False)
    return Outcome(retryable=False, ambiguous=status_code >= 500)


def retry_after(response: httpx.Response) -> float | None:
    """The seconds form of a Retry-After header (what rate limiters send), capped at an hour; None
    when absent or a date."""
    value = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(max(seconds, 0.0), 3600.0) if seconds == seconds else None
