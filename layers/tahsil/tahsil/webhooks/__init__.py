"""Webhooks, one module per concern (docs/webhooks.md; the layers contract in .importlinter):

  events, deliveries   the events API (list, get, redeliver, recover, test); one endpoint's delivery log
  fanout               a new event row -> one delivery message per subscribed endpoint
  delivery             attempts, their schedule and the delivery rows; the retry state machine's task
  endpoints            the endpoints API and which events each endpoint wants
  message              the delivery message: one type, one encoding from the outbox to the sender
  outbox               reading event rows (by id, a merchant's in order)
  rendering            the event types and every payload version (the one place that renders a payload)
  signing              secrets (made, sealed) and the signature headers
  transport            one pinned, bounded HTTP POST (below delivery; nothing above delivery uses it)
  guard                the SSRF guard: which URLs and addresses may be sent to (never imports the transport)

May import ``tahsil.store`` and ``tahsil.kernel``; never ``tahsil.api``, ``tahsil.console`` or
``tahsil.payments`` (it reads events, not payments).
"""
