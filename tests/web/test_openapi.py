"""The OpenAPI document: valid OpenAPI 3.1, it documents every ``/api/v1`` route, and the
running API keeps to it. Schemathesis generates requests for every operation (valid ones
anonymous and with a Bearer API token, invalid ones with the token) while a real ffmpeg
is live, and checks each answer: never a 5xx, status codes and JSON bodies as documented,
errors ``{"error": "..."}``."""

from __future__ import annotations

import asyncio
import copy
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from schemathesis import Case, GenerationMode
from schemathesis.errors import FailureGroup

from strom.server import StromServer
from strom.web.app import create_app
from strom.web.openapi import document
from tests.helpers import make_media, publish_args

OPENAPI_PATH = "/api/v1/openapi.json"
PASSWORD = "a long enough password"
EXAMPLES = 15  # per operation, generation mode and identity: bounded and derandomized

# What the document cannot say: categories are rows that admins add at run time, and
# titles with control characters are refused, so a schema-valid edit may get 422 (and so
# may a profile: a link the schema calls a URI need not be an http(s) one; and an avatar:
# bytes of an image type need not be a picture).
CONFIG = schemathesis.Config.from_dict(
    {
        "operations": [
            {
                # (the fuzzer's slugs name no clip)
                "include-name": "PATCH /api/v1/clips/{slug}",
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": [200, 401, 403, 404, 422]}
                },
            },
            {
                "include-path": "/api/v1/me/channel",
                "include-method": "PATCH",
                "checks": {"positive_data_acceptance": {"expected-statuses": [200, 401, 403, 422]}},
            },
            {
                "include-path": "/api/v1/me/profile",
                "include-method": "PUT",
                "checks": {"positive_data_acceptance": {"expected-statuses": [200, 401, 403, 422]}},
            },
            {
                "include-name": "POST /api/v1/me/avatar",
                "checks": {"positive_data_acceptance": {"expected-statuses": [200, 401, 403, 422]}},
            },
        ]
    }
)


def base_url(server: StromServer) -> str:
    return f"http://127.0.0.1:{server.http_port}"


async def test_served_document_is_valid_openapi_31(server: StromServer) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(base_url(server) + OPENAPI_PATH) as resp,
    ):
        assert resp.status == 200
        assert resp.content_type == "application/json"
        served = await resp.json()
    assert served == document()
    assert served["openapi"].startswith("3.1")
    validate(served, cls=OpenAPIV31SpecValidator)

    # The validator is not a rubber stamp: a response without a description is refused.
    broken = copy.deepcopy(served)
    del broken["paths"]["/api/v1/streams"]["get"]["responses"]["200"]["description"]
    with pytest.raises(OpenAPIValidationError, match="description"):
        validate(broken, cls=OpenAPIV31SpecValidator)


async def test_every_api_route_is_documented(server: StromServer) -> None:
    app = create_app(server.site)  # the app every node serves (it only routes)
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and route.resource.canonical.startswith("/api/")
    }
    served.discard(("get", OPENAPI_PATH))
    documented = {(method, path) for path, ops in document()["paths"].items() for method in ops}
    assert served == documented


@dataclass
class Findings:
    """What schemathesis saw: failures by (operation, identity, title), statuses seen."""

    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)
    statuses: dict[tuple[str, str], set[int]] = field(default_factory=lambda: defaultdict(set))
    cases: int = 0

    def report(self) -> str:
        return "\n\n".join(
            f"{op} ({who}): {title}\n{detail}"
            for (op, who, title), detail in sorted(self.failures.items())
        )


def _check_case(case: Case, base: str, headers: dict[str, str], who: str, found: Findings) -> None:
    label = case.operation.label
    response = case.call(base_url=base, headers=headers, timeout=10)
    found.cases += 1
    found.statuses[(label, who)].add(response.status_code)
    try:
        case.validate_response(
            response,
            headers=headers,
            transport_kwargs={"base_url": base, "headers": headers, "timeout": 10},
        )
    except FailureGroup as group:
        for failure in group.exceptions:
            found.failures.setdefault((label, who, failure.title), str(group))
    if response.status_code >= 400:
        # Every error is JSON with a message, documented or not.
        try:
            body = response.json()
        except ValueError:
            body = None
        if not (isinstance(body, dict) and isinstance(body.get("error"), str)):
            found.failures.setdefault(
                (label, who, f"{response.status_code} is not a JSON error"),
                f"{case.as_curl_command(headers=headers)}\n-> {response.text[:300]!r}",
            )


def fuzz(base: str, token: str) -> Findings:
    """Runs in a worker thread: schemathesis and requests are synchronous."""
    schema = schemathesis.openapi.from_url(base + OPENAPI_PATH, config=CONFIG, timeout=10)
    found = Findings()
    identities = {"anonymous": {}, "token": {"Authorization": f"Bearer {token}"}}
    runs = [
        (GenerationMode.POSITIVE, "anonymous"),
        (GenerationMode.POSITIVE, "token"),
        # Invalid requests as the token's holder only: anonymous, the same validation
        # answers a public operation, and an account's is refused before it (401, as its
        # valid requests are above). A quarter of the work (CPU: mostly the generation).
        (GenerationMode.NEGATIVE, "token"),
    ]
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, who in runs:
            strategy = operation.as_strategy(generation_mode=mode)
            try:
                _given(strategy, base, identities[who], who, found)
            except Unsatisfiable:
                # Nothing invalid to send: no parameters, or only a free-form string.
                assert mode is GenerationMode.NEGATIVE, operation.label
    return found


def _given(
    strategy: SearchStrategy[Case], base: str, headers: dict[str, str], who: str, found: Findings
) -> None:
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=strategy)
    def run(case: Case) -> None:
        _check_case(case, base, headers, who, found)

    run()


async def wait_live(server: StromServer, name: str, publisher: asyncio.subprocess.Process) -> None:
    for _ in range(200):
        channel = server.registry.get(name)
        if channel is not None and channel.live and name in server.directory.infos:
            return
        if publisher.returncode is not None:
            break
        await asyncio.sleep(0.05)
    pytest.fail(f"{name} did not go live")


@pytest.mark.e2e
async def test_schemathesis_against_the_running_api(server: StromServer, tmp_path: Path) -> None:
    store = server.store
    assert store is not None
    _, key = await store.users.create("fuzzed", PASSWORD)
    token = await store.tokens.create("fuzzed", "schemathesis")
    category = (await store.channels.categories())[0]
    await store.channels.update("fuzzed", title="Fuzzing live", category_slug=category.slug)
    # Live while it runs, so the stream list, the channel and health answers are full ones.
    media = make_media(tmp_path / "loop.flv", seconds=10.0, size="320x180", bitrate="300k")
    publisher = await asyncio.create_subprocess_exec(
        *publish_args(media, server.rtmp_port, key, loop=True),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_live(server, "fuzzed", publisher)
        found = await asyncio.to_thread(fuzz, base_url(server), token)
        assert publisher.returncode is None, "the broadcast went on during the run"
    finally:
        if publisher.returncode is None:
            publisher.kill()
        await publisher.wait()

    assert not found.failures, found.report()
    labels = {label for label, _ in found.statuses}
    assert labels == {
        f"{method.upper()} {path}" for path, ops in document()["paths"].items() for method in ops
    }
    for (label, who), statuses in found.statuses.items():
        assert all(s < 500 for s in statuses), (label, who, statuses)
        if label.split()[1].startswith("/api/v1/me"):
            # The token really authenticates; without it, only refusals.
            if who == "token":
                # (deleting a recording or a session: the fuzzer's ids name none, so 404)
                by_id = ("DELETE /api/v1/me/recordings/{id}", "DELETE /api/v1/me/sessions/{id}")
                ok = {200, 404} if label in by_id else {200}
                assert ok & statuses, (label, statuses)
            else:
                assert statuses <= {401, 403}, (label, statuses)
    assert found.statuses[("GET /api/v1/streams", "token")] >= {200, 400}


async def test_inputs_schemathesis_does_not_generate(server: StromServer) -> None:
    """A lone surrogate is valid JSON but no database stores it; a huge body is refused.
    Both are documented answers, never a 500."""
    store = server.store
    assert store is not None
    await store.users.create("edgy", PASSWORD)
    token = await store.tokens.create("edgy", "edge cases")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    url = base_url(server) + "/api/v1/me/channel"
    documented = document()["paths"]["/api/v1/me/channel"]["patch"]["responses"]
    bodies = {
        b'{"title": "\\ud800 live"}': 422,
        b'{"description": "a\\udfff"}': 422,
        b'{"category": "\\udbff"}': 422,
        json.dumps({"title": "x" * 100_000}).encode(): 413,
        b'{"title": "still fine"}': 200,
    }
    async with aiohttp.ClientSession() as http:
        for body, status in bodies.items():
            async with http.patch(url, data=body, headers=headers) as resp:
                answer: Any = await resp.json()
                assert resp.status == status, (body[:40], answer)
                assert str(status) in documented
                if status >= 400:
                    assert isinstance(answer["error"], str)
    info = await store.channels.get("edgy")
    assert info is not None
    assert info.title == "still fine"
