"""Route a local merchant's live payments through a fake Adyen, to watch the whole flow on `make run`.

    make run                                   # terminal 1: the local gateway (test mode: the simulator)
    .venv/bin/python scripts/fake_adyen.py     # terminal 2: fake Adyen on 127.0.0.1, wired to the demo merchant

It starts the fake Adyen of the tests (tests/fakes/adyen.py: Checkout API /payments, captures, cancels,
refunds, HMAC-signed notifications), sets the merchant's live connector to it (what `tahsil merchants
connector ... --base-url` does) and delivers its notifications to the gateway's
/connectors/adyen/<merchant>/notifications, so a capture goes capture_pending, then captured.
Ctrl-C stops it and removes the connector (live payments are refused again).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--merchant-id", help="default: the demo merchant of the running `tahsil dev`")
    args = parser.parse_args()
    state_file = Path(os.environ.get("TAHSIL_STATE_DIR", ROOT / ".tahsil")) / "dev.json"
    if not state_file.exists():
        raise SystemExit(f"no local gateway state at {state_file}; start one with `make run`")
    state = json.loads(state_file.read_text())
    from tahsil_local import aws

    aws.use_endpoint(state["aws_endpoint_url"])
    os.environ.update(state["environment"])
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    from tahsil.connectors import settings
    from tahsil_local.fake_adyen import FakeAdyen

    merchant_id = args.merchant_id or state["merchant_id"]
    api_key, hmac_key = "fake_" + secrets.token_urlsafe(24), secrets.token_hex(32).upper()
    fake = FakeAdyen(api_key=api_key, hmac_key=hmac_key, merchant_account="TahsilLocalECOM")
    url = fake.start()
    settings.configure(merchant_id, mode="live", connector="adyen", operator="scripts/fake_adyen.py",
                       merchant_account="TahsilLocalECOM", api_key=api_key, hmac_key=hmac_key, environment="test",
                       base_url=url)
    fake.push_to(f"{state['base_url']}/connectors/adyen/{merchant_id}/notifications")
    live = state["keys"]["live"]["secret"] if merchant_id == state["merchant_id"] else "<the merchant's live key>"
    from tahsil.store import dal

    merchant = dal.get(dal.credentials_table(), f"MER#{merchant_id}", "MER") or {}
    if not merchant.get("live_enabled"):
        print(f"Note: {merchant_id} is not approved for live payments yet (403 LIVE_MODE_NOT_ENABLED). Ask for a review "
              f"(POST /v1/go-live/reviews) and approve it:\n  .venv/bin/tahsil go-live approve {merchant_id} --force "
              "--reason 'local testing'\n", flush=True)
    print(f"""Fake Adyen at {url}; merchant {merchant_id}'s live payments go there, notifications to the gateway.
Try (a real-looking card: seed test cards are refused in live mode):
  curl -s {state['base_url']}/v1/payments/authorize -H "X-API-Key: {live}" -H "Content-Type: application/json" \\
    -d '{{"amount": 2500, "currency": "EUR",
         "card": {{"number": "4111111111111111", "exp_month": 12, "exp_year": 2030, "cvv": "737"}}}}'
Holder name "Not enough balance" (or "CVC Declined", "Expired Card", ...) makes the fake refuse. Ctrl-C stops it.""",
          flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    settings.remove(merchant_id, "live")
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
