"""The pieces every part of the OpenAPI description shares (:mod:`strom.web.openapi`,
:mod:`strom.web.openapi_channels`, :mod:`strom.web.openapi_admin`): the error answer, the
two ways to authenticate, a JSON answer."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}
AUTH: list[dict[str, list[str]]] = [{"bearer": []}, {"cookie": []}]


def json_answer(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}
