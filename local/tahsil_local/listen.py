"""``tahsil listen``: receive the local gateway's webhooks, verify them, print them.

In the spirit of ``stripe listen``: it registers a test-mode endpoint pointing at itself on
127.0.0.1, checks every delivery's Standard Webhooks signature (and the timestamp, within
5 minutes), prints one line per event, optionally forwards the body to your own handler,
and deletes the endpoint when you press Ctrl-C.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_S = 300


def verify(secret: str, headers: dict[str, str], body: bytes, now: float | None = None) -> dict[str, Any]:
    """Standard Webhooks verification; raises ValueError with the reason. Returns the event."""
    msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not msg_id or not timestamp.isdigit():
        raise ValueError("missing webhook-id or webhook-timestamp")
    if abs((now or time.time()) - int(timestamp)) > TOLERANCE_S:
        raise ValueError("timestamp outside the 5-minute tolerance")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()).decode()
    for candidate in headers.get("webhook-signature", "").split():
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return json.loads(body)
    raise ValueError("no valid v1 signature")


def _api(base_url: str, key: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(base_url + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"X-API-Key": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - the local gateway's own URL
        return json.loads(answer.read())


def listen(state: dict[str, Any], port: int, events: list[str], forward_to: str | None, stop: threading.Event) -> int:
    key = state["keys"]["test"]["secret"]
    secret_box: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                event = verify(secret_box["secret"], headers, body)
            except ValueError as exc:
                print(f"{time.strftime('%H:%M:%S')}  REJECTED  {exc}", flush=True)
                self.send_response(400)
                self.end_headers()
                return
            status = 200
            if forward_to:
                try:
                    request = urllib.request.Request(forward_to, data=body, method="POST", headers=dict(self.headers))
                    with urllib.request.urlopen(request, timeout=15) as answer:  # noqa: S310 - the developer's own URL
                        status = answer.status
                except Exception as exc:  # noqa: BLE001 - report the forward failure as the answer
                    print(f"{time.strftime('%H:%M:%S')}  forward failed: {exc}", flush=True)
                    status = 502
            print(f"{time.strftime('%H:%M:%S')}  {event['type']:<34} {event['id']}  "
                  f"{event['data']['object'].get('id', '')}  [signature ok] -> {status}", flush=True)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    url = f"http://127.0.0.1:{server.server_address[1]}/webhooks"
    endpoint = _api(state["base_url"], key, "POST", "/v1/webhook-endpoints",
                    {"url": url, "enabled_events": events, "name": "tahsil listen"})["data"]
    secret_box["secret"] = endpoint["secret"]
    print(f"Listening on {url} for {', '.join(events)} (endpoint {endpoint['id']}, secret {endpoint['secret']})", flush=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    server.shutdown()
    server.server_close()
    _api(state["base_url"], key, "DELETE", f"/v1/webhook-endpoints/{endpoint['id']}")
    print(f"stopped; endpoint {endpoint['id']} deleted", flush=True)
    return 0
