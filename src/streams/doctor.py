"""``streams doctor``: a pre-flight check of what the worker needs before it starts.

Kafka (reachable, the contract's topics exist with their partition counts and configs, the
replication factor fits the cluster), commercetools (client-credentials token, the scopes the
product needs for its project, the project answering), Amazon (the LWA refresh-token
exchange, the region's endpoint answering a retail purchase-order read with the token). Each
check prints ``OK`` or ``FAIL`` with what is wrong, naming the ``STREAMS_*`` setting to look
at; any failure exits 1. Nothing is written anywhere: every call is a read or a token.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from streams.config import Settings
from streams.observability.logging import RedactingFilter, settings_secrets


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


# What the worker does in commercetools, and the scopes that allow it (any one of them);
# manage_project allows everything. Orders: sales-order import writes them, storefront
# orders only read them.
CT_NEEDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("inventory entries (read, update)", ("manage_products",)),
    ("custom Types (the ledger and policy fields)", ("manage_types",)),
    (
        "supply channels (read)",
        ("view_channels", "manage_channels", "view_products", "manage_products"),
    ),
)


def ct_needed(s: Settings) -> list[tuple[str, tuple[str, ...]]]:
    needs = list(CT_NEEDS)
    if s.sales_orders_enabled:
        needs.append(("orders (sales-order import)", ("manage_orders",)))
    else:
        needs.append(("orders (storefront orders, read)", ("view_orders", "manage_orders")))
    return needs


def scope_problems(s: Settings, granted: str) -> tuple[list[str], str]:
    """(problems, note) of a token's ``scope`` against what the product needs."""
    parsed = [tuple(p.split(":", 2)) for p in granted.split() if ":" in p]
    if not parsed:  # the emulator answers "todo"; real projects always name their scopes
        return [], f"the server named no project scopes ({granted or 'none'!r}): not judged"
    project = s.ct_project_key
    names = {p[0] for p in parsed if p[1] == project and len(p) == 2}
    others = sorted({p[1] for p in parsed if p[1] != project})
    if not names:
        return [
            f"the token's scopes are for project(s) {', '.join(others)}, not "
            f"STREAMS_CT_PROJECT_KEY={project}"
        ], ""
    if "manage_project" in names:
        return [], "manage_project"
    missing = [
        f"{any_of[0]} ({what})" for what, any_of in ct_needed(s) if not names.intersection(any_of)
    ]
    if missing:
        return [
            f"missing scope(s) {', '.join(missing)}: grant them to the API client "
            "(or drop STREAMS_CT_SCOPES to use all of the client's)"
        ], ""
    return [], " ".join(sorted(names))


# --- Kafka --------------------------------------------------------------------------------
async def kafka_checks(s: Settings) -> list[Check]:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from streams.adapters.kafka_admin import check_topics, client_kwargs
    from streams.topics import topic_specs

    where = f"STREAMS_KAFKA_BOOTSTRAP={s.kafka_bootstrap}"
    admin = AIOKafkaAdminClient(**client_kwargs(s), request_timeout_ms=10_000)
    try:
        await admin.start()
    except Exception as exc:
        return [
            Check(
                "kafka",
                False,
                f"cannot reach {where} ({_short(exc)}); check it and "
                f"STREAMS_KAFKA_SECURITY_PROTOCOL={s.kafka_security_protocol}",
            )
        ]
    try:
        brokers = len((await admin.describe_cluster()).get("brokers") or [])
        specs = [t for t in topic_specs(s) if t.config]
        configs: dict[str, dict[str, str]] = {}
        unread = ""
        try:
            found = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, t.name) for t in specs]
            )
            for resp in found:
                for error, _, _, name, entries in resp.resources:
                    if error == 0:
                        configs[name] = {e[0]: e[1] for e in entries}
        except Exception as exc:  # e.g. no DescribeConfigs ACL: the worker does not need it
            unread = f"; topic configs not readable here ({_short(exc)})"
    finally:
        await admin.close()
    out = [Check("kafka", True, f"{where} reachable, {brokers} broker(s)")]
    problems = await check_topics(s)
    for p in problems:
        name = "kafka replication" if p.topic == "(cluster)" else f"kafka topic {p.topic}"
        out.append(Check(name, False, p.problem))
    missing = {p.topic for p in problems}
    failed = len(out)  # checks so far; a config mismatch below adds one
    for spec in specs:
        have = configs.get(spec.name)
        if have is None or spec.name in missing:
            continue
        for key, want in spec.config.items():
            got = have.get(key)
            if key == "cleanup.policy":  # "compact,delete" and "delete,compact" are one policy
                same = set(want.split(",")) == set((got or "").split(","))
            else:
                same = got == want
            if not same:
                out.append(
                    Check(
                        f"kafka topic {spec.name}",
                        False,
                        f"{key}={got} but the contract says {key}={want} "
                        "(kafka-configs.sh --alter, or recreate the topic)",
                    )
                )
    if not problems and len(out) == failed:
        out.append(
            Check(
                "kafka topics",
                True,
                f"{len(topic_specs(s))} topics of the contract "
                f"with STREAMS_PARTITIONS={s.partitions}{unread}",
            )
        )
    return out


# --- commercetools ------------------------------------------------------------------------
async def ct_checks(s: Settings, http: aiohttp.ClientSession) -> list[Check]:
    auth = s.ct_auth_url.rstrip("/")
    params = {"grant_type": "client_credentials"}
    if s.ct_scopes.strip():
        params["scope"] = s.ct_scopes.strip()
    basic = aiohttp.BasicAuth(s.ct_client_id, s.ct_client_secret.get_secret_value())
    try:
        async with http.post(f"{auth}/oauth/token", params=params, data=params, auth=basic) as r:
            status, body = r.status, await _json_or_text(r)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return [
            Check(
                "commercetools token",
                False,
                f"cannot reach STREAMS_CT_AUTH_URL={s.ct_auth_url} ({_short(exc)})",
            )
        ]
    token = body.get("access_token") if isinstance(body, dict) else None
    if status != 200 or not isinstance(token, str):
        hint = "STREAMS_CT_CLIENT_ID / STREAMS_CT_CLIENT_SECRET"
        if status == 400 and "scope" in str(body):
            hint = "STREAMS_CT_SCOPES"
        return [
            Check(
                "commercetools token",
                False,
                f"HTTP {status} from {s.ct_auth_url}/oauth/token ({_error_of(body)}): check {hint}",
            )
        ]
    out = [Check("commercetools token", True, f"client {s.ct_client_id} at {s.ct_auth_url}")]
    problems, note = scope_problems(s, str(body.get("scope") or ""))
    out += [Check("commercetools scopes", False, p) for p in problems]
    if not problems:
        out.append(Check("commercetools scopes", True, note))
    url = f"{s.ct_api_url.rstrip('/')}/{s.ct_project_key}/inventory"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        q = {"limit": "1", "withTotal": "false"}
        async with http.get(url, params=q, headers=headers) as r:
            status, body = r.status, await _json_or_text(r)
    except (aiohttp.ClientError, TimeoutError) as exc:
        out.append(
            Check(
                "commercetools project",
                False,
                f"cannot reach STREAMS_CT_API_URL={s.ct_api_url} ({_short(exc)})",
            )
        )
        return out
    if status == 200:
        out.append(
            Check(
                "commercetools project",
                True,
                f"{s.ct_project_key} at {s.ct_api_url}: inventory readable",
            )
        )
    else:
        hint = {
            404: "STREAMS_CT_PROJECT_KEY (or STREAMS_CT_API_URL: the project's region)",
            403: "the API client's scopes",
            401: "STREAMS_CT_AUTH_URL and STREAMS_CT_API_URL (one region)",
        }.get(status, "STREAMS_CT_API_URL")
        out.append(
            Check(
                "commercetools project",
                False,
                f"HTTP {status} reading {s.ct_project_key}'s inventory "
                f"({_error_of(body)}): check {hint}",
            )
        )
    return out


# --- Amazon -------------------------------------------------------------------------------
async def amazon_checks(s: Settings, http: aiohttp.ClientSession) -> list[Check]:
    derived = s.derived.get("spapi_endpoint")
    where = f"region {s.spapi_region}, endpoint {s.spapi_endpoint}" + (
        f" ({derived})" if derived else ""
    )
    out = [Check("amazon region", True, where)]
    form = {
        "grant_type": "refresh_token",
        "refresh_token": s.spapi_refresh_token.get_secret_value(),
        "client_id": s.spapi_client_id,
        "client_secret": s.spapi_client_secret.get_secret_value(),
    }
    try:
        async with http.post(s.spapi_lwa_url, data=form) as r:
            status, body = r.status, await _json_or_text(r)
    except (aiohttp.ClientError, TimeoutError) as exc:
        out.append(
            Check(
                "amazon token (LWA)",
                False,
                f"cannot reach STREAMS_SPAPI_LWA_URL={s.spapi_lwa_url} ({_short(exc)})",
            )
        )
        return out
    token = body.get("access_token") if isinstance(body, dict) else None
    if status != 200 or not isinstance(token, str):
        error = body.get("error") if isinstance(body, dict) else None
        hint = {
            "invalid_client": "STREAMS_SPAPI_CLIENT_ID / STREAMS_SPAPI_CLIENT_SECRET (the "
            "application's LWA credentials)",
            "invalid_grant": "STREAMS_SPAPI_REFRESH_TOKEN (revoked, or issued to another "
            "application: authorize the application again)",
        }.get(str(error), "STREAMS_SPAPI_LWA_URL and the SP-API credentials")
        out.append(
            Check(
                "amazon token (LWA)",
                False,
                f"HTTP {status} from {s.spapi_lwa_url} ({_error_of(body)}): check {hint}",
            )
        )
        return out
    out.append(Check("amazon token (LWA)", True, f"application {s.spapi_client_id}"))
    # a read every vendor application may make (retail purchase orders, one, the last hour)
    now = datetime.now(UTC)
    q = {"limit": "1", "createdAfter": _iso(now - timedelta(hours=1)), "createdBefore": _iso(now)}
    url = f"{s.spapi_endpoint.rstrip('/')}/vendor/orders/v1/purchaseOrders"
    try:
        async with http.get(url, params=q, headers={"x-amz-access-token": token}) as r:
            status, body = r.status, await _json_or_text(r)
    except (aiohttp.ClientError, TimeoutError) as exc:
        out.append(
            Check(
                "amazon endpoint",
                False,
                f"cannot reach STREAMS_SPAPI_ENDPOINT={s.spapi_endpoint} ({_short(exc)})",
            )
        )
        return out
    if status == 200:
        out.append(Check("amazon endpoint", True, "retail purchase orders readable"))
    else:
        hint = {
            403: "the application's roles (Amazon Fulfillment, or Inventory and Order "
            "Tracking) and that the refresh token's account is a vendor in STREAMS_SPAPI_REGION",
            404: "STREAMS_SPAPI_ENDPOINT",
        }.get(status, "STREAMS_SPAPI_ENDPOINT")
        out.append(
            Check(
                "amazon endpoint",
                False,
                f"HTTP {status} for getPurchaseOrders ({_error_of(body)}): check {hint}",
            )
        )
    return out


# --- running ------------------------------------------------------------------------------
async def doctor(s: Settings) -> list[Check]:
    """Every check; a check that raises is a failure that says so, never a traceback."""
    timeout = aiohttp.ClientTimeout(total=max(s.ct_timeout_s, s.spapi_timeout_s))
    async with aiohttp.ClientSession(timeout=timeout) as http:
        groups: list[tuple[str, Callable[[], Awaitable[list[Check]]]]] = [
            ("kafka", lambda: kafka_checks(s)),
            ("commercetools", lambda: ct_checks(s, http)),
            ("amazon", lambda: amazon_checks(s, http)),
        ]
        results = await asyncio.gather(*(run() for _, run in groups), return_exceptions=True)
    out: list[Check] = []
    for (name, _), result in zip(groups, results, strict=True):
        if isinstance(result, BaseException):
            out.append(Check(name, False, f"check failed: {_short(result)}"))
        else:
            out += result
    return out


def run_doctor(s: Settings) -> int:
    redact = RedactingFilter(settings_secrets(s)).redact  # whatever a server echoed back
    checks = asyncio.run(doctor(s))
    width = max(len(c.name) for c in checks)
    for c in checks:
        print(redact(f"{'OK  ' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.detail}"))
    failed = sum(not c.ok for c in checks)
    summary = f"{failed} of {len(checks)} checks failed" if failed else "all checks passed"
    print(summary, file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _json_or_text(r: aiohttp.ClientResponse) -> Any:
    text = await r.text()
    try:
        import orjson

        return orjson.loads(text)
    except ValueError:
        return text[:200]


def _error_of(body: Any) -> str:
    """The error an answer names (OAuth ``error``/``error_description``, commercetools'
    ``message``, SP-API's ``errors[0]``), in a few words."""
    if isinstance(body, dict):
        if "error" in body:
            return " ".join(str(body.get(k)) for k in ("error", "error_description") if body.get(k))
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            e = errors[0]
            return f"{e.get('code', '')}: {e.get('message', '')}".strip(": ")
        if "message" in body:
            return str(body["message"])[:200]
    return " ".join(str(body).split())[:200] or "no body"
