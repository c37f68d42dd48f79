"""ANY on every API resource, and ANY /{proxy+}: what API Gateway calls when no route has the method or path.

405 with ``Allow`` naming the path's methods (GET /v1/payments/authorize), or 404 (GET /v1/paymnts), in
the usual envelope with X-Request-Id and a request log record, instead of API Gateway's own
403 "Missing Authentication Token". No key is needed to learn that a path does not exist.
"""

from tahsil.api import http

handler = http.entrypoint(None, fallback=True)
