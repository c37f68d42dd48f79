"""GET /v1/openapi.json: the OpenAPI 3 document, generated from the code by `tahsil openapi`."""

import functools
from importlib import resources

from aws_lambda_powertools.event_handler import Response

from tahsil.api import http

app = http.resolver()


@functools.cache
def document() -> str:
    return resources.files("tahsil").joinpath("openapi.json").read_text()


@app.get("/v1/openapi.json", summary="This API's OpenAPI document", tags=["Meta"], include_in_schema=False)
def openapi():
    return Response(200, "application/json", document(), headers={"Cache-Control": "public, max-age=300"})


handler = http.entrypoint(app)
