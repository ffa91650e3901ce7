"""Signed webhook delivery against a receiver on 127.0.0.1 that verifies with the README's snippet."""

from __future__ import annotations

import json
import re
import threading
import types
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow.csv as pacsv
import pytest
import yaml

from tests.conftest import published_rows
from tests.webhook_receiver import SECRET, Receiver, readme_verifier
from transforms.cli import main
from transforms.errors import SegflowError
from transforms.packs import export, load_packs, resolve_pack

TOKEN = "crm-token-abcdef"
PHONES = ("13900000001", "13900000002")


@pytest.fixture
def receiver():
    Receiver.secret, Receiver.token, Receiver.fail_first = SECRET.encode(), None, 0
    Receiver.requests, Receiver.applied, Receiver.verifier = [], {}, readme_verifier()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/members"
    server.shutdown()


@pytest.fixture
def small(features_built):
    return features_built


def write_pack(settings, destination: dict, where: str = "order_count >= 1", **pack) -> None:
    packs = {"buyers": {"where": where, "contact_fields": ["phone", "unionid"], **pack}}
    if destination:
        packs["buyers"]["destination"] = {"type": "webhook", "batch_size": 1, **destination}
    (settings.config_dir / "packs.yml").write_text(yaml.safe_dump({"packs": packs}), encoding="utf-8")


def test_signed_batches_are_accepted_and_tampering_wrong_secrets_and_replays_are_not(
    small, receiver, tmp_path, monkeypatch
):
    monkeypatch.setenv("SEGFLOW_WEBHOOK_SECRET", SECRET)
    write_pack(small, {"url": receiver, "secret_env": "SEGFLOW_WEBHOOK_SECRET", "backoff_seconds": 0.01})
    Receiver.fail_first = 2  # the first batch is retried twice; its key lands once
    result = export(small, load_packs(small)["buyers"], tmp_path)
    exported = sorted(pacsv.read_csv(result.file).column("customer_key").to_pylist())
    received = sorted(m["customer_key"] for batch in Receiver.applied.values() for m in batch)
    assert received == exported and len(exported) == result.delivered_batches == len(Receiver.applied)
    assert len(Receiver.requests) == len(exported) + 2
    headers, body = Receiver.requests[-1]
    assert headers["Segflow-Signature"].startswith("v1=") and headers["Idempotency-Key"].startswith(
        result.export_id
    )

    def replay(body: bytes, headers: dict) -> int:
        request = urllib.request.Request(receiver, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert replay(body, headers) == 200  # within the window, and the key makes it a no-op
    assert replay(body.replace(b"}", b', "extra": 1}', 1), headers) == 401  # tampered body
    later = types.SimpleNamespace(time=lambda: int(headers["Segflow-Timestamp"]) + 301)
    Receiver.verifier["time"] = later  # the receiver's clock five minutes and a second on
    assert replay(body, headers) == 401
    Receiver.verifier = readme_verifier()

    # A wrong secret: refused at once, reported in one line, not retried, nothing logged.
    monkeypatch.setenv("SEGFLOW_WEBHOOK_SECRET", "not-the-receivers-secret")
    before = len(Receiver.requests)
    with pytest.raises(SegflowError, match=r"refused batch 1 of buyers-2026-03-10-2: HTTP 401 .*not retried"):
        export(small, load_packs(small)["buyers"], tmp_path)
    assert len(Receiver.requests) == before + 1
    assert published_rows(small, "select count(*) from audience_pack_exports") == [(1,)]


def test_tokens_come_from_the_environment_and_are_never_written(
    small, receiver, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("SEGFLOW_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("CRM_TOKEN", TOKEN)
    Receiver.token = TOKEN
    write_pack(small, {"url": receiver, "secret_env": "SEGFLOW_WEBHOOK_SECRET", "token_env": "CRM_TOKEN"})
    argv = ["pack", "export", "buyers", "--out", str(tmp_path), "--config", str(small.config_dir)]
    assert main([*argv, "--warehouse", small.warehouse_url, "--json"]) == 0
    assert Receiver.applied and all(h["Authorization"] == f"Bearer {TOKEN}" for h, _ in Receiver.requests)
    printed = capsys.readouterr()
    written = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]  # export, manifest, warehouse
    logged = published_rows(small, "select * from audience_pack_exports")
    for secret in (TOKEN, SECRET):
        assert secret not in printed.out + printed.err and secret not in repr(logged)
        assert not any(secret.encode() in content for content in written)
    assert not any(phone in printed.out + printed.err for phone in PHONES)


def test_hashed_packs_send_no_raw_identifier(small, receiver, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGFLOW_WEBHOOK_SECRET", SECRET)
    write_pack(small, {"url": receiver, "secret_env": "SEGFLOW_WEBHOOK_SECRET"}, hash=True)
    result = export(small, load_packs(small)["buyers"], tmp_path)
    sent = b"".join(body for _, body in Receiver.requests)
    assert result.members > 0 and not any(phone.encode() in sent for phone in PHONES)
    phones = [m["phone"] for batch in Receiver.applied.values() for m in batch if m["phone"]]
    assert phones and all(re.fullmatch(r"[0-9a-f]{64}", phone) for phone in phones)


@pytest.mark.parametrize(
    ("destination", "says"),
    [
        (
            {"url": "http://crm.example.com/in", "secret_env": "S"},
            "would send customers' identifiers in clear",
        ),
        ({"url": "https://crm.example.com/in"}, "a webhook needs secret_env"),
        ({"url": "https://crm.example.com/in", "secret_env": "whsec 0123 4567"}, "never the secret itself"),
        ({"url": "https://user:pw@crm.example.com/in", "secret_env": "S"}, "not in the url"),
        ({"url": "https://crm.example.com/in", "secret_env": "S", "auth": "digest"}, "auth 'digest'"),
    ],
)
def test_unsafe_destinations_are_refused_when_the_packs_load(small, destination, says):
    write_pack(small, destination)
    with pytest.raises(SegflowError, match=re.escape(says)):
        load_packs(small)


def test_plain_http_is_allowed_when_the_pack_says_so(small):
    write_pack(small, {"url": "http://crm.internal/in", "secret_env": "S", "allow_insecure": True})
    assert load_packs(small)["buyers"].webhook.allow_insecure


def test_a_missing_environment_variable_stops_the_export_before_anything(
    small, receiver, tmp_path, monkeypatch
):
    monkeypatch.delenv("SEGFLOW_WEBHOOK_SECRET", raising=False)
    write_pack(small, {"url": receiver, "secret_env": "SEGFLOW_WEBHOOK_SECRET"})
    with pytest.raises(SegflowError, match="environment variable SEGFLOW_WEBHOOK_SECRET is not set"):
        export(small, resolve_pack(small, "buyers", None), tmp_path / "out")
    assert Receiver.requests == [] and not (tmp_path / "out").exists()
    assert published_rows(
        small, "select count(*) from duckdb_tables() where table_name = 'audience_pack_exports'"
    ) == [(0,)]


class FlakyServer(BaseHTTPRequestHandler):
    """Fails the 2nd and 3rd requests with 503 and drops the connection after applying the 5th."""

    requests = 0
    applied: dict[str, list] = {}
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with FlakyServer.lock:
            FlakyServer.requests += 1
            number = FlakyServer.requests
            if number in (2, 3):
                self.send_response(503)
                self.end_headers()
                return
            key = self.headers["Idempotency-Key"]
            FlakyServer.applied.setdefault(key, body["members"])  # a repeated key is not applied twice
        if number == 5:
            self.connection.close()  # applied, but the client never hears back: it must retry
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_webhook_against_a_flaky_server_loses_and_duplicates_nothing(small, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGFLOW_WEBHOOK_SECRET", SECRET)
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/members"
        write_pack(
            small,
            {"url": url, "secret_env": "SEGFLOW_WEBHOOK_SECRET", "backoff_seconds": 0.01},
            where="order_count >= 0",
        )
        (small.config_dir / "packs.yml").write_text(
            (small.config_dir / "packs.yml").read_text().replace("batch_size: 1", "batch_size: 2")
        )
        result = export(small, load_packs(small)["buyers"], tmp_path)
    finally:
        server.shutdown()
    exported = sorted(pacsv.read_csv(result.file).column("customer_key").to_pylist())
    received = sorted(member["customer_key"] for batch in FlakyServer.applied.values() for member in batch)
    assert received == exported
    assert result.delivered_batches == 3 and len(FlakyServer.applied) == 3
    assert FlakyServer.requests >= 6
