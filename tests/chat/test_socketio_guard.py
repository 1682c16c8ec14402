"""Malformed input at the Socket.IO door (found by the benchmark's soak): every bad
packet ends the client's session with one warning line, the socket closes at once, no
traceback and no ERROR line reach the log, and nothing is left behind; the same for HTTP
requests aiohttp cannot parse."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from strom.server import StromServer
from strom.web.request_errors import MalformedRequestsAsWarnings
from strom.web.socketio.guard import PeerErrorsAsWarnings, socketio_packet_problem
from tests.helpers.chat import WAIT

GOOD = [
    "0",
    "0{}",
    "1",
    '2["comment",{"roomKey":"alice","text":"hi"}]',
    '21["join_room","alice"]',
    "3[1]",
    '51-["frame",{"_placeholder":true,"num":0}]',
    '2/chat,["x"]',
]
BAD = [
    "",
    "Z",
    "4",  # CONNECT_ERROR: the server's, never a client's
    "9999",
    '2["comment"',
    "2",  # an event without a name
    "2[1,2,3]",
    '2{"not":"a list"}',
    "2[]",
    '51-["frame",{"_placeholder":true,"num":1}]',  # one attachment: num 0 only
    '51-["frame",{"_placeholder":true,"num":"0"}]',
    '50-["frame"]',
    "2" + "[" * 5000 + "]" * 5000,
    b"\xff\xfe",
]


@pytest.mark.parametrize("data", GOOD)
def test_well_formed_packets_pass(data: str) -> None:
    assert socketio_packet_problem(data) is None


@pytest.mark.parametrize("data", BAD)
def test_malformed_packets_are_named(data: str | bytes) -> None:
    assert socketio_packet_problem(data)


def test_binary_packets_need_a_connected_namespace() -> None:
    binary = '51-["frame",{"_placeholder":true,"num":0}]'
    assert socketio_packet_problem(binary, lambda ns: False) == "a binary packet before connecting"
    assert socketio_packet_problem(binary, lambda ns: ns == "/") is None


def record(msg: str, level: int, exc: BaseException | None) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord("x", level, __file__, 1, msg, (), exc_info)


def test_library_lines_about_bad_requests_become_warnings() -> None:
    rec = record("post request handler error", logging.ERROR, IndexError("list index"))
    assert PeerErrorsAsWarnings().filter(rec)
    assert (rec.levelno, rec.exc_info) == (logging.WARNING, None)
    assert "IndexError: list index" in rec.getMessage()
    own = record("message async handler error", logging.ERROR, KeyError("ours"))
    assert PeerErrorsAsWarnings().filter(own)
    assert own.levelno == logging.ERROR  # a bug in Strom's handlers keeps its traceback
    assert own.exc_info is not None


def test_aiohttp_lines_about_unparsable_requests_become_warnings() -> None:
    from aiohttp.http_exceptions import BadHttpMessage  # noqa: PLC0415

    rec = record("Error handling request from %s", logging.ERROR, BadHttpMessage("bad"))
    rec.args = ("10.0.0.1",)
    assert MalformedRequestsAsWarnings().filter(rec)
    assert rec.levelno == logging.WARNING
    assert rec.getMessage() == "bad request from 10.0.0.1: 400 bad"
    crash = record("Error handling request from %s", logging.ERROR, RuntimeError("bug"))
    assert MalformedRequestsAsWarnings().filter(crash)
    assert crash.levelno == logging.ERROR


async def engineio_socket(server: StromServer) -> aiohttp.ClientWebSocketResponse:
    session = aiohttp.ClientSession()
    url = f"http://127.0.0.1:{server.http_port}/socket.io/?EIO=4&transport=websocket"
    ws = await session.ws_connect(url)
    ws._strom_session = session  # type: ignore[attr-defined]  # closed by the test
    opened = await ws.receive(timeout=WAIT)
    assert opened.type is aiohttp.WSMsgType.TEXT
    assert opened.data.startswith("0{")
    return ws


@pytest.mark.parametrize(
    "garbage",
    ["42[", "4Z", "42", '42{"a":1}', "451-[\"frame\",{\"_placeholder\":true,\"num\":7}]",
     "9999", "x", "b!!", "451/elsewhere,[\"frame\",{\"_placeholder\":true,\"num\":0}]"],
)  # fmt: skip
async def test_a_malformed_packet_closes_the_session_cleanly(
    server: StromServer, garbage: str, caplog: pytest.LogCaptureFixture
) -> None:
    door = server.socketio
    assert door is not None
    ws = await engineio_socket(server)
    try:
        await ws.send_str("40")
        connected = await ws.receive(timeout=WAIT)
        assert connected.data.startswith("40")
        assert len(door.clients) == 1
        with caplog.at_level(logging.INFO):
            await ws.send_str(garbage)
            async with asyncio.timeout(WAIT):  # closed by the server, not at a ping timeout
                while not ws.closed:
                    msg = await ws.receive()
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        break
            async with asyncio.timeout(WAIT):
                while True:  # the session is gone at once, not at engine.io's next sweep
                    if not door.clients and not door.sio.eio.sockets:
                        break
                    await asyncio.sleep(0.05)
    finally:
        await ws.close()
        await ws._strom_session.close()  # type: ignore[attr-defined]
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("socket.io" in r.getMessage() for r in caplog.records if r.levelno == 30)


async def test_an_unparsable_http_request_is_one_warning_line(
    server: StromServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
        writer.write(b"GET /live/\x00\xff HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), WAIT)
        writer.close()
        await asyncio.sleep(0.1)
    assert answer.split(b" ", 2)[1] == b"400"
    warnings = [r for r in caplog.records if r.name == "strom.web.http"]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert "bad request from 127.0.0.1: 400" in warnings[0].getMessage()
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("garbage", ["42[", "9", "4Z\x1e40"])
async def test_long_polling_garbage_is_answered_and_logged_as_one_line(
    server: StromServer, garbage: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{server.http_port}/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as resp:
            opened = await resp.text()
        sid = opened[opened.index('"sid":"') + 7 :].split('"', 1)[0]
        async with http.post(f"{url}&sid={sid}", data="40") as resp:
            assert resp.status == 200
        with caplog.at_level(logging.INFO):
            async with asyncio.timeout(WAIT), http.post(f"{url}&sid={sid}", data=garbage) as resp:
                await resp.read()  # answered, not held
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(r.levelno == logging.WARNING for r in caplog.records)
