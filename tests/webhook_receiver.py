"""A webhook receiver on 127.0.0.1 that verifies segflow's signatures with the README's snippet."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler

from transforms import PROJECT_ROOT

SECRET = "whsec-test-0123456789"


def readme_verifier() -> dict:
    """The verification snippet of the README, run as a receiver would paste it."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- verify-snippet -->\s*```python\n(.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    exec(block, namespace)  # noqa: S102 - the README's own code, under test
    return namespace


class Receiver(BaseHTTPRequestHandler):
    """Verifies every request; applies a batch once per idempotency key; can fail on demand."""

    secret = SECRET.encode()
    token: str | None = None
    verifier: dict = {}
    requests: list[tuple[dict, bytes]] = []
    applied: dict[str, list] = {}
    fail_first: int = 0  # answer 503 to this many requests first
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = dict(self.headers.items())
        with Receiver.lock:
            Receiver.requests.append((headers, body))
            if len(Receiver.requests) <= Receiver.fail_first:
                return self._answer(503)
            ok = Receiver.verifier["verify_segflow_request"](Receiver.secret, self.headers, body)
            if Receiver.token and self.headers.get("Authorization") != f"Bearer {Receiver.token}":
                ok = False
            if not ok:
                return self._answer(401)
            Receiver.applied.setdefault(self.headers["Idempotency-Key"], json.loads(body)["members"])
        self._answer(200)

    def _answer(self, code: int) -> None:
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass
