"""Route a running local gateway's merchant's live payments through a fake Adyen, to watch the whole flow.

    make run                                   # terminal 1: the local gateway (test mode: the simulator)
    .venv/bin/python scripts/fake_adyen.py     # terminal 2: fake Adyen on 127.0.0.1, wired to the demo merchant

`make run-live` (`tahsil dev --fake-adyen`) does all of this in one command for the demo merchant; this script
is for a gateway already running, or another merchant (--merchant-id). It starts the same fake
(tahsil_local/fake_adyen.py: Checkout API /payments and modifications, Adyen's idempotency, HMAC-signed
notifications retried until accepted, fault switches under <fake>/_fake), sets the merchant's live connector
to it (what `tahsil merchants connector ... --base-url` does) and delivers its notifications to the gateway's
/connectors/adyen/<merchant>/notifications, so a capture goes capture_pending, then captured.
Ctrl-C stops it and removes the connector (live payments are refused again).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--merchant-id", help="default: the demo merchant of the running `tahsil dev` (TAHSIL_PORT)")
    args = parser.parse_args()
    from tahsil_local import aws, cli, fake_adyen

    state = json.loads(cli._running_state_file().read_text())
    aws.use_endpoint(state["aws_endpoint_url"])
    os.environ.update(state["environment"])
    from tahsil.connectors import settings
    from tahsil.store import dal

    merchant_id = args.merchant_id or state["merchant_id"]
    fake = fake_adyen.attach(merchant_id, f"{state['base_url']}/connectors/adyen/{merchant_id}/notifications",
                             operator="scripts/fake_adyen.py")
    live = state["keys"]["live"]["secret"] if merchant_id == state["merchant_id"] else "<the merchant's live key>"
    merchant = dal.get(dal.credentials_table(), f"MER#{merchant_id}", "MER") or {}
    if not merchant.get("live_enabled"):
        print(f"Note: {merchant_id} is not approved for live payments yet (403 LIVE_MODE_NOT_ENABLED). Ask for a review "
              f"(POST /v1/go-live/reviews) and approve it:\n  .venv/bin/tahsil go-live approve {merchant_id} --force "
              "--reason 'local testing'\n", flush=True)
    print(f"""Fake Adyen at {fake.url}; merchant {merchant_id}'s live payments go there, notifications to the gateway.
Switches: GET {fake.control_url} (state); POST {fake.control_url}/faults, /notifications, /refusals, /reset.
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
