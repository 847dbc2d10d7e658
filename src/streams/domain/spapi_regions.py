"""Amazon's SP-API endpoints by region, and the LWA token URL (the same for every region).

Amazon serves the Selling Partner API from one host per region (North America, Europe,
Far East), each with a sandbox twin under ``sandbox.``; Login with Amazon issues access
tokens for all regions from one URL. A selling partner's data lives in one region: a
request to another region's host fails with 403, which is why a host that contradicts
``STREAMS_SPAPI_REGION`` is refused at start rather than discovered on the first call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

Region = Literal["na", "eu", "fe"]
REGIONS: tuple[Region, ...] = ("na", "eu", "fe")
LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
_PRODUCTION = "sellingpartnerapi-{}.amazon.com"
_SANDBOX = "sandbox.sellingpartnerapi-{}.amazon.com"


@dataclass(frozen=True)
class AmazonHost:
    region: Region
    sandbox: bool


def host_for(region: Region, sandbox: bool = False) -> str:
    if region not in REGIONS:
        raise ValueError(f"unknown SP-API region {region!r}: one of {', '.join(REGIONS)}")
    return (_SANDBOX if sandbox else _PRODUCTION).format(region)


def endpoint_for(region: Region, sandbox: bool = False) -> str:
    """``https://<host>`` of the SP-API in ``region`` (its sandbox with ``sandbox``)."""
    return f"https://{host_for(region, sandbox)}"


def amazon_host(url: str) -> AmazonHost | None:
    """The region (and sandbox-ness) of ``url`` if it is one of Amazon's SP-API hosts."""
    host = (urlsplit(url if "//" in url else f"//{url}").hostname or "").lower().rstrip(".")
    for region in REGIONS:
        for sandbox in (False, True):
            if host == host_for(region, sandbox):
                return AmazonHost(region, sandbox)
    return None


def endpoint_problem(url: str, region: Region, sandbox: bool | None) -> str | None:
    """Why ``url`` contradicts the region (or the sandbox switch, when it was set), or None.

    Hosts that are not Amazon's (the local sandbox, a proxy) are the operator's business."""
    found = amazon_host(url)
    if found is None:
        return None
    if found.region != region:
        return (
            f"STREAMS_SPAPI_ENDPOINT {url} is Amazon's {found.region} endpoint but "
            f"STREAMS_SPAPI_REGION is {region}: set STREAMS_SPAPI_REGION={found.region}, or "
            f"unset STREAMS_SPAPI_ENDPOINT to use {endpoint_for(region, found.sandbox)}"
        )
    if sandbox is not None and found.sandbox != sandbox:
        kind = "sandbox" if found.sandbox else "production"
        return (
            f"STREAMS_SPAPI_ENDPOINT {url} is Amazon's {kind} endpoint but "
            f"STREAMS_SPAPI_SANDBOX is {str(sandbox).lower()}: make them agree, or unset "
            "STREAMS_SPAPI_ENDPOINT to derive it"
        )
    return None
