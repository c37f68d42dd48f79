"""POST /connectors/adyen/{merchant_id}/notifications: Adyen's standard notifications for a merchant's live connector.

Public (Adyen calls it), authenticated by the HMAC signature of every item under the merchant's
notification HMAC key. Applies every item to the payment's state exactly once, or records it as ignored
with its reason (another merchant account, an unknown reference: metric ``NotificationIgnored``);
answers ``[accepted]`` as Adyen expects, duplicates included. Only a bad signature is refused (401);
anything that failed to apply is a 500, which Adyen retries (applying is idempotent).

Rate limit: its own budget per source IP (``notifications``, RateLimitNotificationsPerSecond, 500/s), not the
browsers' public 50/s: Adyen sends from a few addresses, in bursts when it retries a backlog. Over it, a 429,
which Adyen retries later. Counted before the signature is checked, so a flood of forgeries is bounded too.
"""

from aws_lambda_powertools.event_handler import Response

from tahsil.api import http
from tahsil.payments import recovery

app = http.resolver()


@app.post("/connectors/adyen/<merchant_id>/notifications", summary="Receive Adyen notifications", tags=["Connectors"],
          include_in_schema=False)
def notifications(merchant_id: str):
    return Response(200, "text/plain", recovery.receive(merchant_id, app.current_event.body))


handler = http.entrypoint(app, authenticate=False, rate_class="notifications")  # per source IP, its own budget
