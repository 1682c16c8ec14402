from __future__ import annotations

import itertools
import random

import pytest

from strom.errors import LimitExceeded, LocalProtocolError, RtmpError
from strom.media.amf import UNDEFINED, EcmaArray, encode_amf0, encode_amf3
from strom.media.rtmp import (
    ClientState,
    CommandError,
    ConnectRequest,
    ConnectResult,
    DataMessage,
    MediaMessage,
    PlayRequest,
    PublishRequest,
    RtmpClientSession,
    RtmpLimits,
    RtmpServerSession,
    StatusReceived,
    StopPlayRequest,
    StreamCreated,
    UnpublishRequest,
    encode_message,
)
from strom.media.rtmp.chunk import ChunkReader, RtmpMessage
from strom.media.rtmp.handshake import ClientHandshake
from strom.media.rtmp.messages import Command, MessageType, UserControl, UserControlEvent

# --------------------------------------------------------------------------- helpers


class RawPeer:
    """A hand-driven client: handshake done, then raw messages to the server."""

    def __init__(self, limits: RtmpLimits | None = None) -> None:
        self.server = RtmpServerSession(
            limits or RtmpLimits(), random_bytes=random.Random(1).randbytes
        )
        handshake = ClientHandshake(random.Random(2).randbytes)
        self.server.receive_data(handshake.data_to_send())
        handshake.receive_data(self.server.data_to_send())
        assert self.server.receive_data(handshake.data_to_send()) == []
        self.reader = ChunkReader()

    def send(
        self, message_type: int, payload: bytes, stream_id: int = 0, csid: int = 3, ts: int = 0
    ) -> list[object]:
        data = encode_message(csid, message_type, stream_id, ts, payload, 128)
        return list(self.server.receive_data(data))

    def command(
        self, name: str, tid: float, obj: object, *args: object, stream_id: int = 0
    ) -> list[object]:
        return self.send(20, bytes(Command(name, tid, obj, args)), stream_id)

    def replies(self) -> list[RtmpMessage]:
        return self.reader.receive_data(self.server.data_to_send())

    def commands(self) -> list[Command]:
        return [Command.parse(m.payload) for m in self.replies() if m.message_type == 20]

    def connect(self) -> None:
        self.command("connect", 1, {"app": "live", "tcUrl": "rtmp://h/live"})
        self.server.accept_connect()
        self.replies()

    def create_stream(self) -> int:
        self.command("createStream", 2, None)
        (result,) = self.commands()
        assert result.name == "_result"
        return int(result.arguments[0])  # type: ignore[call-overload]


def pump(client: RtmpClientSession, server: RtmpServerSession) -> tuple[list[object], list[object]]:
    """Move bytes both ways until both sides are quiet; returns (server, client) events."""
    server_events: list[object] = []
    client_events: list[object] = []
    while True:
        up = client.data_to_send()
        if up:
            server_events += server.receive_data(up)
        down = server.data_to_send()
        if down:
            client_events += client.receive_data(down)
        if not up and not down:
            return server_events, client_events


def connected_pair(
    limits: RtmpLimits | None = None,
) -> tuple[RtmpClientSession, RtmpServerSession]:
    client = RtmpClientSession(random_bytes=random.Random(3).randbytes)
    server = RtmpServerSession(limits or RtmpLimits(), random_bytes=random.Random(4).randbytes)
    client.connect("live", "rtmp://127.0.0.1/live")
    (request,), _ = pump(client, server)
    assert request == ConnectRequest(
        "live",
        "rtmp://127.0.0.1/live",
        0,
        {
            "app": "live",
            "type": "nonprivate",
            "flashVer": "FMLE/3.0 (compatible; Strom)",
            "tcUrl": "rtmp://127.0.0.1/live",
        },
    )
    server.accept_connect()
    _, (result,) = pump(client, server)
    assert isinstance(result, ConnectResult)
    assert result.accepted
    assert result.code == "NetConnection.Connect.Success"
    assert client.state is ClientState.CONNECTED
    return client, server


# --------------------------------------------------------------- client <-> server


def test_publish_media_unpublish() -> None:
    client, server = connected_pair()
    client.publish("key?token=abc")
    (request,), (created,) = pump(client, server)
    assert request == PublishRequest(1, "key?token=abc", "live")
    assert created == StreamCreated(1)
    server.accept_publish(1)
    _, (status,) = pump(client, server)
    assert status == StatusReceived(
        1, "status", "NetStream.Publish.Start", "key?token=abc is now published."
    )

    client.send_metadata({"width": 320.0, "height": 180.0})
    sent = []
    for i in range(30):
        video = MediaMessage(1, 9, i * 33, bytes([0x17 if i % 10 == 0 else 0x27]) + bytes(i * 50))
        audio = MediaMessage(1, 8, i * 23, b"\xaf\x01" + bytes(20))
        for m in (video, audio):
            client.send_media(m.message_type, m.timestamp, m.payload)
            sent.append(m)
    events, _ = pump(client, server)
    assert events[0] == DataMessage(1, 0, "onMetaData", [{"width": 320.0, "height": 180.0}])
    assert events[1:] == sent

    client.unpublish()
    events, _ = pump(client, server)
    assert events == [UnpublishRequest(1)]


def test_play_receives_what_the_server_sends() -> None:
    client, server = connected_pair()
    client.play("mychannel")
    (request,), (created,) = pump(client, server)
    assert request == PlayRequest(1, "mychannel")
    assert created == StreamCreated(1)
    server.accept_play(1)
    server.send_data(1, "onMetaData", EcmaArray(width=320.0))
    server.send_media(1, 9, 0, b"\x17\x00seqheader")
    # Fan-out path: bytes encoded once, written after the queued ones.
    shared = encode_message(6, 9, 1, 0x1000005, b"\x27\x01" + bytes(9000), 4096)
    _, events = pump(client, server)
    events += client.receive_data(shared)
    statuses = [e.code for e in events if isinstance(e, StatusReceived)]
    assert statuses == ["NetStream.Play.Reset", "NetStream.Play.Start"]
    data = [(e.name, e.values) for e in events if isinstance(e, DataMessage)]
    assert data == [("|RtmpSampleAccess", [True, True]), ("onMetaData", [{"width": 320.0}])]
    media = [e for e in events if isinstance(e, MediaMessage)]
    assert media == [
        MediaMessage(1, 9, 0, b"\x17\x00seqheader"),
        MediaMessage(1, 9, 0x1000005, b"\x27\x01" + bytes(9000)),
    ]

    client.close_stream()
    events, _ = pump(client, server)
    assert events == [StopPlayRequest(1)]


def test_publish_rejected_with_bad_name() -> None:
    client, server = connected_pair()
    client.publish("wrong-key")
    (request,), _ = pump(client, server)
    server.reject_publish(request.stream_id, "NetStream.Publish.BadName", "Unknown stream key.")
    _, (status,) = pump(client, server)
    assert status == StatusReceived(1, "error", "NetStream.Publish.BadName", "Unknown stream key.")
    # Media that was already on its way is dropped, not an error.
    client.send_media(9, 0, b"\x17")
    assert pump(client, server) == ([], [])


def test_play_rejected_stream_not_found() -> None:
    client, server = connected_pair()
    client.play("nobody")
    (request,), _ = pump(client, server)
    server.reject_play(request.stream_id, "NetStream.Play.StreamNotFound", "No such stream.")
    _, (status,) = pump(client, server)
    assert status.level == "error"
    assert status.code == "NetStream.Play.StreamNotFound"


def test_connect_rejected() -> None:
    client = RtmpClientSession()
    server = RtmpServerSession()
    client.connect("nope", "rtmp://h/nope")
    pump(client, server)
    server.reject_connect("unknown application")
    _, (result,) = pump(client, server)
    assert result == ConnectResult(
        False,
        "NetConnection.Connect.Rejected",
        "unknown application",
        {
            "level": "error",
            "code": "NetConnection.Connect.Rejected",
            "description": "unknown application",
        },
    )
    assert client.state is ClientState.CLOSED


def test_digest_client_against_server() -> None:
    client = RtmpClientSession(digest=True)
    server = RtmpServerSession()
    client.connect("live", "rtmp://h/live")
    (request,), _ = pump(client, server)
    assert isinstance(request, ConnectRequest)


def answer_everything(server: RtmpServerSession, events: list[object]) -> None:
    for event in events:
        if isinstance(event, ConnectRequest):
            server.accept_connect()
        elif isinstance(event, PublishRequest):
            server.accept_publish(event.stream_id)


def test_server_fed_byte_at_a_time_gives_the_same_events() -> None:
    # Record everything a publishing client sends...
    client = RtmpClientSession(random_bytes=random.Random(5).randbytes)
    server = RtmpServerSession()
    client.connect("live", "rtmp://h/live")
    upstream = bytearray()
    while True:
        up = client.data_to_send()
        upstream += up
        answer_everything(server, server.receive_data(up))
        events = client.receive_data(server.data_to_send())
        if any(isinstance(e, ConnectResult) for e in events):
            client.publish("key")
        if any(isinstance(e, StatusReceived) for e in events):
            client.send_metadata({"a": 1.0})
            for i in range(20):
                client.send_media(9, i * 33, bytes(i * 300))
                client.send_media(8, i * 21, bytes(i))
            client.unpublish()
        if not up:
            break
    # ...then replay it into fresh sessions, whole and byte by byte.
    lump = RtmpServerSession()
    lump_events = lump.receive_data(bytes(upstream))
    trickle = RtmpServerSession()
    trickle_events = []
    for i in range(len(upstream)):
        events = trickle.receive_data(upstream[i : i + 1])
        answer_everything(trickle, events)
        trickle_events += events
    assert trickle_events == lump_events
    kinds = [type(e).__name__ for e in lump_events]
    assert kinds == ["ConnectRequest", "PublishRequest", "DataMessage"] + ["MediaMessage"] * 40 + [
        "UnpublishRequest"
    ]


# --------------------------------------------------------------- raw protocol details


def test_connect_reply_sequence() -> None:
    peer = RawPeer(RtmpLimits(window_ack_size=1_000_000, out_chunk_size=8192))
    peer.command("connect", 1, {"app": "live", "objectEncoding": 0})
    peer.server.accept_connect()
    replies = peer.replies()
    assert [m.message_type for m in replies] == [5, 6, 1, 4, 20]
    assert int.from_bytes(replies[0].payload, "big") == 1_000_000
    assert replies[1].payload == (1_000_000).to_bytes(4, "big") + b"\x02"
    assert int.from_bytes(replies[2].payload, "big") == 8192
    assert UserControl.parse(replies[3].payload) == UserControl(UserControlEvent.STREAM_BEGIN, 0)
    result = Command.parse(replies[4].payload)
    assert result.name == "_result"
    assert result.transaction_id == 1
    assert isinstance(result.command_object, dict)
    assert set(result.command_object) == {"fmsVer", "capabilities"}
    assert result.arguments == (
        {
            "level": "status",
            "code": "NetConnection.Connect.Success",
            "description": "Connection succeeded.",
            "objectEncoding": 0.0,
        },
    )


def test_amf3_connect_and_data() -> None:
    peer = RawPeer()
    payload = (
        b"\x00"
        + encode_amf0("connect", 1.0)
        + b"\x11"
        + encode_amf3({"app": "live", "tcUrl": "rtmp://h/live", "objectEncoding": 3})
    )
    (request,) = peer.send(17, payload)
    assert request == ConnectRequest(
        "live", "rtmp://h/live", 3, {"app": "live", "tcUrl": "rtmp://h/live", "objectEncoding": 3}
    )
    peer.server.accept_connect()
    (result,) = peer.commands()
    assert result.arguments[0]["objectEncoding"] == 3.0  # type: ignore[index]
    stream_id = peer.create_stream()
    peer.command("publish", 0, None, "key", stream_id=stream_id)
    peer.server.accept_publish(stream_id)
    data = b"\x00" + encode_amf0("@setDataFrame", "onMetaData") + b"\x11" + encode_amf3({"w": 2})
    (event,) = peer.send(15, data, stream_id=stream_id, csid=5)
    assert event == DataMessage(stream_id, 0, "onMetaData", [{"w": 2}])


def test_publish_replies_as_real_clients_expect() -> None:
    peer = RawPeer()
    peer.connect()
    peer.command("releaseStream", 2, None, "key")
    peer.command("FCPublish", 3, None, "key")
    peer.command("createStream", 4, None)
    assert [(c.name, c.transaction_id, c.arguments) for c in peer.commands()] == [
        ("_result", 2, (UNDEFINED,)),
        ("_result", 3, (UNDEFINED,)),
        ("_result", 4, (1.0,)),
    ]
    (request,) = peer.command("publish", 5, None, "key", "live", stream_id=1)
    assert request == PublishRequest(1, "key", "live")
    peer.server.accept_publish(1)
    replies = peer.replies()
    assert UserControl.parse(replies[0].payload) == UserControl(UserControlEvent.STREAM_BEGIN, 1)
    on_fc, on_status = (Command.parse(m.payload) for m in replies[1:])
    assert on_fc.name == "onFCPublish"
    assert on_status.name == "onStatus"
    assert replies[2].stream_id == 1
    assert on_status.arguments[0]["code"] == "NetStream.Publish.Start"  # type: ignore[index]


def test_replies_wait_for_accept_connect() -> None:
    peer = RawPeer()
    peer.command("connect", 1, {"app": "live"})
    peer.command("createStream", 2, None)
    assert peer.replies() == []
    peer.server.accept_connect()
    results = [c for c in peer.commands() if c.name == "_result"]
    assert [c.transaction_id for c in results] == [1, 2]


def test_ping_request_gets_a_ping_response() -> None:
    peer = RawPeer()
    peer.connect()
    peer.send(4, bytes(UserControl(UserControlEvent.PING_REQUEST, 123456)), csid=2)
    (reply,) = peer.replies()
    assert UserControl.parse(reply.payload) == UserControl(UserControlEvent.PING_RESPONSE, 123456)


def test_acknowledgement_after_the_window_the_peer_asked_for() -> None:
    peer = RawPeer()
    peer.connect()
    peer.send(5, (3000).to_bytes(4, "big"), csid=2)
    stream_id = peer.create_stream()
    peer.command("publish", 0, None, "key", stream_id=stream_id)
    peer.server.accept_publish(stream_id)
    peer.replies()
    acks = []
    for i in range(10):
        peer.send(9, bytes(1000), stream_id=stream_id, csid=6, ts=i)
        acks += [m for m in peer.replies() if m.message_type == MessageType.ACKNOWLEDGEMENT]
    assert len(acks) >= 3  # ~11 KB received, window 3000


def test_unknown_command_gets_an_error_only_when_it_expects_an_answer() -> None:
    peer = RawPeer()
    peer.connect()
    peer.command("_checkbw", 5, None)
    (error,) = peer.commands()
    assert error.name == "_error"
    assert error.transaction_id == 5
    peer.command("someNotification", 0, None)
    assert peer.commands() == []


def test_tolerated_commands() -> None:
    peer = RawPeer()
    peer.connect()
    stream_id = peer.create_stream()
    for name in ("receiveAudio", "receiveVideo", "pause"):
        assert peer.command(name, 0, None, True, stream_id=stream_id) == []
    peer.command("getStreamLength", 7, None, "x", stream_id=stream_id)
    (result,) = peer.commands()
    assert (result.name, result.arguments) == ("_result", (0.0,))


def test_commands_before_connect_are_refused() -> None:
    peer = RawPeer()
    with pytest.raises(RtmpError, match="createStream"):
        peer.command("createStream", 2, None)


def test_second_connect_is_refused() -> None:
    peer = RawPeer()
    peer.connect()
    with pytest.raises(RtmpError, match="connect"):
        peer.command("connect", 3, {"app": "live"})


def test_publish_on_a_stream_that_was_not_created() -> None:
    peer = RawPeer()
    peer.connect()
    assert peer.command("publish", 0, None, "key", stream_id=7) == []
    (status,) = peer.commands()
    assert status.arguments[0]["level"] == "error"  # type: ignore[index]


def test_publish_twice_on_one_stream() -> None:
    peer = RawPeer()
    peer.connect()
    stream_id = peer.create_stream()
    assert len(peer.command("publish", 0, None, "a", stream_id=stream_id)) == 1
    assert peer.command("publish", 0, None, "b", stream_id=stream_id) == []
    (status,) = peer.commands()
    assert "already" in status.arguments[0]["description"]  # type: ignore[index]


def test_too_many_streams() -> None:
    peer = RawPeer(RtmpLimits(max_streams=2))
    peer.connect()
    for tid in (2, 3, 4):
        peer.command("createStream", tid, None)
    assert [c.name for c in peer.commands()] == ["_result", "_result", "_error"]


def test_media_on_a_stream_that_never_existed_is_an_error() -> None:
    peer = RawPeer()
    peer.connect()
    with pytest.raises(RtmpError, match="never created"):
        peer.send(9, b"\x17", stream_id=5, csid=6)


def test_unknown_message_type_is_an_error() -> None:
    peer = RawPeer()
    peer.connect()
    with pytest.raises(RtmpError, match="unknown RTMP message type 7"):
        peer.send(7, b"?")


def test_delete_stream_while_publishing_and_playing() -> None:
    peer = RawPeer()
    peer.connect()
    publish_id = peer.create_stream()
    play_id = peer.create_stream()
    peer.command("publish", 0, None, "a", stream_id=publish_id)
    peer.command("play", 0, None, "b", stream_id=play_id)
    peer.server.accept_publish(publish_id)
    peer.server.accept_play(play_id)
    assert peer.command("closeStream", 0, None, stream_id=play_id) == [StopPlayRequest(play_id)]
    assert peer.command("deleteStream", 0, None, float(publish_id)) == [
        UnpublishRequest(publish_id)
    ]
    assert peer.command("deleteStream", 0, None, float(play_id)) == []


def test_aggregate_message_is_split() -> None:
    peer = RawPeer()
    peer.connect()
    stream_id = peer.create_stream()
    peer.command("publish", 0, None, "a", stream_id=stream_id)

    def tag(kind: int, ts: int, body: bytes) -> bytes:
        header = bytes((kind,)) + len(body).to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big")
        header += bytes((ts >> 24,)) + bytes(3)
        return header + body + (11 + len(body)).to_bytes(4, "big")

    aggregate = tag(9, 5000, b"v1") + tag(8, 5010, b"a1") + tag(9, 5033, b"v2")
    events = peer.send(22, aggregate, stream_id=stream_id, csid=6, ts=100)
    assert events == [
        MediaMessage(stream_id, 9, 100, b"v1"),
        MediaMessage(stream_id, 8, 110, b"a1"),
        MediaMessage(stream_id, 9, 133, b"v2"),
    ]


def test_close_with_error_is_readable_by_the_client() -> None:
    client, server = connected_pair()
    client.publish("key")
    pump(client, server)
    server.accept_publish(1)
    pump(client, server)
    server.close_with_error("stream key revoked")
    _, (status,) = pump(client, server)
    assert status == StatusReceived(1, "error", "NetStream.Failed", "stream key revoked")
    assert server.receive_data(b"anything") == []


def test_a_refusal_then_close_ignores_what_follows() -> None:
    client, server = connected_pair()
    client.publish("key")
    pump(client, server)
    server.reject_publish(1, "NetStream.Publish.Rejected", "unknown stream key")
    server.close()
    _, (status,) = pump(client, server)
    assert status == StatusReceived(1, "error", "NetStream.Publish.Rejected", "unknown stream key")
    client.publish("another-key")
    assert pump(client, server) == ([], [])  # no second PublishRequest, no answer


def test_close_with_error_says_the_code_given() -> None:
    client, server = connected_pair()
    client.publish("key")
    pump(client, server)
    server.accept_publish(1)
    pump(client, server)
    server.close_with_error("unsupported video codec 'vp09'", "NetStream.Publish.Rejected")
    _, (status,) = pump(client, server)
    assert status.code == "NetStream.Publish.Rejected"


def test_application_mistakes_are_local_errors() -> None:
    peer = RawPeer()
    with pytest.raises(LocalProtocolError):
        peer.server.accept_connect()
    peer.connect()
    with pytest.raises(LocalProtocolError):
        peer.server.accept_publish(1)


def test_answering_a_request_the_peer_already_withdrew_is_harmless() -> None:
    peer = RawPeer()
    peer.connect()
    stream_id = peer.create_stream()
    publish = bytes(Command("publish", 0, None, ("key", "live")))
    delete = bytes(Command("deleteStream", 0, None, (float(stream_id),)))
    data = encode_message(8, 20, stream_id, 0, publish, 128)
    data += encode_message(3, 20, 0, 0, delete, 128)
    events = peer.server.receive_data(data)
    assert events == [PublishRequest(stream_id, "key", "live"), UnpublishRequest(stream_id)]
    peer.server.accept_publish(stream_id)  # no error, nothing sent
    assert peer.replies() == []
    with pytest.raises(LocalProtocolError):
        peer.server.accept_play(99)


def test_client_reports_command_errors() -> None:
    client, server = connected_pair(RtmpLimits(max_streams=0))
    client.play("x")
    _, events = pump(client, server)
    assert [type(e) for e in events] == [CommandError]


def test_publish_start_names_the_channel_for_strom_clients() -> None:
    """Strom's extension: the status object of Publish.Start carries the channel the key
    publishes to (``strom stream`` shows its viewers and chat); other fields as usual."""
    client, server = connected_pair()
    client.publish("secret-key")
    pump(client, server)
    server.accept_publish(1, channel="alice")
    _, (status,) = pump(client, server)
    assert isinstance(status, StatusReceived)
    assert status.code == "NetStream.Publish.Start"
    assert status.information == {
        "level": "status",
        "code": "NetStream.Publish.Start",
        "description": "secret-key is now published.",
        "channel": "alice",
    }


# ------------------------------------------------ what a peer may make us hold (issue 11)


def test_before_a_publish_messages_are_small() -> None:
    """Issue 11: a client that never authenticated announced 8 MiB messages and had the
    server buffer 28 MiB. Until a publish is accepted, 32 KiB is the most."""
    peer = RawPeer()
    assert peer.send(19, bytes(32 << 10)) == []  # a shared object message, ignored
    with pytest.raises(LimitExceeded, match="exceeds the 32768 byte limit"):
        peer.send(19, bytes((32 << 10) + 1))


def test_before_a_publish_unfinished_bytes_are_small() -> None:
    peer = RawPeer()
    peer.server.receive_data(encode_message(2, 1, 0, 0, (4096).to_bytes(4, "big"), 128))

    def six_of_eight_chunks(csid: int) -> bytes:
        return encode_message(csid, 19, 0, 0, bytes(8 * 4096), 4096)[: 12 + 6 * 4097 - 1]

    peer.server.receive_data(six_of_eight_chunks(3) + six_of_eight_chunks(4))  # 48 KiB
    with pytest.raises(LimitExceeded, match="unfinished"):
        peer.server.receive_data(six_of_eight_chunks(5))  # 72 KiB > 64 KiB


def _publishing_peer(accept: bool) -> tuple[RawPeer, int]:
    peer = RawPeer()
    peer.connect()
    stream_id = peer.create_stream()
    peer.command("publish", 0, None, "key", "live", stream_id=stream_id)
    if accept:
        peer.server.accept_publish(stream_id)
    else:
        peer.server.reject_publish(stream_id, "NetStream.Publish.BadName", "unknown key")
    peer.replies()
    return peer, stream_id


def test_an_accepted_publish_may_send_big_messages() -> None:
    peer, stream_id = _publishing_peer(accept=True)
    keyframe = b"\x17\x01" + bytes(1 << 20)
    (event,) = peer.send(9, keyframe, stream_id=stream_id, csid=6)
    assert event == MediaMessage(stream_id, 9, 0, keyframe)


def test_a_refused_publish_and_a_player_stay_small() -> None:
    peer, stream_id = _publishing_peer(accept=False)
    with pytest.raises(LimitExceeded, match="32768 byte limit"):
        peer.send(9, bytes(40_000), stream_id=stream_id, csid=6)
    player = RawPeer()
    player.connect()
    stream_id = player.create_stream()
    player.command("play", 0, None, "alice", stream_id=stream_id)
    player.server.accept_play(stream_id)
    assert player.server.streaming
    with pytest.raises(LimitExceeded, match="32768 byte limit"):
        player.send(19, bytes(40_000), stream_id=stream_id)


def test_bounded_steps_raise_the_limits_before_the_media_behind_a_publish() -> None:
    """An impatient publisher sends its whole start and a 200 KiB keyframe at once. Read
    in steps, the session stops after each command: the keyframe is read after the
    publish was accepted, with the publisher's limits."""
    peer = RawPeer()
    keyframe = b"\x17\x01" + bytes(200_000)
    lump = b"".join(
        encode_message(3, 20, stream_id, 0, bytes(command), 128)
        for stream_id, command in [
            (0, Command("connect", 1.0, {"app": "live"})),
            (0, Command("createStream", 2.0, None)),
            (1, Command("publish", 0.0, None, ("key", "live"))),
        ]
    ) + encode_message(6, 9, 1, 40, keyframe, 128)
    server = peer.server
    assert server.receive_data(lump, max_bytes=64 << 10) == [
        ConnectRequest("live", "", 0, {"app": "live"})
    ]
    assert server.input_pending
    server.accept_connect()
    assert server.receive_data(b"", max_bytes=64 << 10) == []  # createStream: answered
    assert server.receive_data(b"", max_bytes=64 << 10) == [PublishRequest(1, "key", "live")]
    server.accept_publish(1)
    events: list[object] = []
    while server.input_pending:
        events += server.receive_data(b"", max_bytes=64 << 10)
    assert events == [MediaMessage(1, 9, 40, keyframe)]


def test_a_flood_of_tiny_messages_is_read_a_bounded_step_at_a_time() -> None:
    """Each step reads at most ~64 KiB worth of chunks, every chunk counted as 128
    bytes: 10,000 four-byte acknowledgements take ~20 steps, not one."""
    peer = RawPeer()
    peer.connect()
    flood = encode_message(2, 3, 0, 0, bytes(4), 128) + (b"\xc2" + bytes(4)) * 9_999
    server = peer.server
    steps = [server.input_work]
    server.receive_data(flood, max_bytes=64 << 10)
    while server.input_pending:
        steps.append(server.input_work)
        server.receive_data(b"", max_bytes=64 << 10)
    steps.append(server.input_work)
    work = [b - a for a, b in itertools.pairwise(steps)]
    assert len(work) == 20
    assert max(work) <= 64 << 10
