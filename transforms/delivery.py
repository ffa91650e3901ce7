"""Where a pack export goes besides its file: a webhook that signs every request.

Each batch is POSTed with an idempotency key, a timestamp and an HMAC-SHA256 signature over
`<timestamp>.<body>` (the scheme Stripe and Svix use), so a receiver can tell segflow's requests
from anyone else's and refuse a replay outside the tolerance window. Secrets and credentials come
from environment variables named in packs.yml, never from the YAML itself, and are never printed,
logged or recorded. Plain http is refused except to loopback, unless the pack allows it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

import pyarrow as pa

from transforms.errors import SegflowError

SIGNATURE_HEADER = "Segflow-Signature"
TIMESTAMP_HEADER = "Segflow-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_VERSION = "v1"
# A receiver refuses a request whose timestamp is further than this from its clock (replays).
TOLERANCE_SECONDS = 300
AUTH_SCHEMES = ("bearer", "basic")
WEBHOOK_KEYS = {
    "type",
    "url",
    "secret_env",
    "token_env",
    "auth",
    "allow_insecure",
    "batch_size",
    "max_attempts",
    "backoff_seconds",
    "timeout_seconds",
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Webhook:
    url: str
    secret_env: str
    token_env: str | None = None
    auth: str = "bearer"
    allow_insecure: bool = False
    batch_size: int = 500
    max_attempts: int = 6
    backoff_seconds: float = 0.5
    timeout_seconds: float = 10.0

    @property
    def host(self) -> str:
        """What messages name: the scheme and host, never a path or query that may carry a token."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def parse_destination(config: dict | None, where: str) -> Webhook | None:
    """A pack's `destination`: None for the default folder, a checked Webhook otherwise."""
    config = config or {"type": "folder"}
    kind = config.get("type", "folder")
    if kind == "folder":
        return None
    if kind != "webhook":
        raise SegflowError(f"{where}: destination type '{kind}': use folder or webhook")
    unknown = sorted(set(config) - WEBHOOK_KEYS)
    if unknown:
        raise SegflowError(f"{where}: unknown destination key(s) {', '.join(unknown)}")
    url = str(config.get("url") or "")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SegflowError(f"{where}: webhook url '{url}' must be https://HOST/...")
    if parts.username or parts.password:
        raise SegflowError(f"{where}: put webhook credentials in token_env, not in the url")
    allow_insecure = config.get("allow_insecure", False)
    if not isinstance(allow_insecure, bool):
        raise SegflowError(f"{where}: allow_insecure must be true or false")
    if parts.scheme == "http" and not _is_loopback(parts.hostname) and not allow_insecure:
        raise SegflowError(
            f"{where}: webhook url http://{parts.hostname} would send customers' identifiers in clear "
            "text: use https, or set allow_insecure: true if the network is trusted"
        )
    for key in ("secret_env", "token_env"):
        name = config.get(key)
        if name is not None and not (isinstance(name, str) and _ENV_NAME.fullmatch(name)):
            raise SegflowError(
                f"{where}: {key} names an environment variable (e.g. SEGFLOW_WEBHOOK_SECRET), "
                "never the secret itself"
            )
    if not config.get("secret_env"):
        raise SegflowError(
            f"{where}: a webhook needs secret_env, the environment variable holding its signing secret"
        )
    auth = str(config.get("auth", "bearer"))
    if auth not in AUTH_SCHEMES:
        raise SegflowError(f"{where}: auth '{auth}': use {' or '.join(AUTH_SCHEMES)}")
    try:
        return Webhook(
            url=url,
            secret_env=config["secret_env"],
            token_env=config.get("token_env"),
            auth=auth,
            allow_insecure=allow_insecure,
            batch_size=int(config.get("batch_size", 500)),
            max_attempts=int(config.get("max_attempts", 6)),
            backoff_seconds=float(config.get("backoff_seconds", 0.5)),
            timeout_seconds=float(config.get("timeout_seconds", 10)),
        )
    except (TypeError, ValueError) as exc:
        raise SegflowError(
            f"{where}: batch_size, max_attempts, backoff_seconds and timeout_seconds are numbers"
        ) from exc


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Credentials:
    secret: bytes
    authorization: str | None

    def __repr__(self) -> str:  # never in a log or a traceback's locals
        return "Credentials(<hidden>)"


def credentials(webhook: Webhook, pack: str) -> Credentials:
    """Read the secret and token from the environment: a missing one is an error before anything is sent."""
    missing = [name for name in (webhook.secret_env, webhook.token_env) if name and not os.environ.get(name)]
    if missing:
        raise SegflowError(
            f"pack {pack}: environment variable {missing[0]} is not set (its webhook's "
            f"{'secret_env' if missing[0] == webhook.secret_env else 'token_env'}); nothing was exported or sent"
        )
    authorization = None
    if webhook.token_env:
        token = os.environ[webhook.token_env]
        if webhook.auth == "basic":
            import base64

            if ":" not in token:
                raise SegflowError(
                    f"pack {pack}: {webhook.token_env} must hold user:password for basic auth; nothing was sent"
                )
            authorization = "Basic " + base64.b64encode(token.encode("utf-8")).decode("ascii")
        else:
            authorization = f"Bearer {token}"
    return Credentials(os.environ[webhook.secret_env].encode("utf-8"), authorization)


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value: v1=<hex HMAC-SHA256 of '<timestamp>.<body>'>."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify(
    secret: bytes, timestamp: str, signature_header: str, body: bytes, now: float | None = None
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is within the tolerance."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent) > TOLERANCE_SECONDS:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, given.strip()) for given in (signature_header or "").split(","))


def deliver(webhook: Webhook, creds: Credentials, export_id: str, body: pa.Table) -> int:
    """POST the members in batches. A batch keeps its idempotency key across retries, so one the
    receiver already took is not applied twice; each attempt is signed afresh with its own
    timestamp. Retries connection errors, 408, 429 and 5xx with backoff; any other refusal (a
    rejected signature, a wrong token) stops at once."""
    rows = body.to_pylist()
    size = max(1, webhook.batch_size)
    batches = [rows[i : i + size] for i in range(0, len(rows), size)] or [[]]
    for number, batch in enumerate(batches, start=1):
        payload = json.dumps(
            {"export_id": export_id, "batch": number, "batches": len(batches), "members": batch},
            ensure_ascii=False,
            default=str,
        ).encode("utf-8")
        _post(webhook, creds, payload, f"{export_id}:{number}", f"batch {number} of {export_id}")
    return len(batches)


def _post(webhook: Webhook, creds: Credentials, payload: bytes, key: str, what: str) -> None:
    last_problem = "no answer"
    for attempt in range(1, webhook.max_attempts + 1):
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(creds.secret, timestamp, payload),
        }
        if creds.authorization:
            headers["Authorization"] = creds.authorization
        request = urllib.request.Request(webhook.url, data=payload, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=webhook.timeout_seconds) as response:
                if 200 <= response.status < 300:
                    return
                last_problem = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            if exc.code not in (408, 429) and exc.code < 500:
                reason = " (signature or credentials rejected)" if exc.code in (401, 403) else ""
                raise SegflowError(
                    f"webhook {webhook.host} refused {what}: HTTP {exc.code}{reason}; not retried"
                ) from None
            last_problem = f"HTTP {exc.code}"
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last_problem = type(getattr(exc, "reason", exc)).__name__
        if attempt < webhook.max_attempts:
            time.sleep(webhook.backoff_seconds * 2 ** (attempt - 1))
    raise SegflowError(
        f"webhook {webhook.host} did not take {what} after {webhook.max_attempts} attempts ({last_problem})"
    )
