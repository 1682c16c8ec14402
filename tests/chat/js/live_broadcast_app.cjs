// The live-broadcast app's Socket.IO flow, with the JavaScript client those apps used
// (socket.io-client 4, from npm). Run by tests/chat/test_open_rooms.py:
//   node live_broadcast_app.cjs http://127.0.0.1:PORT ROOM
// Prints one JSON object: what each step got. Exits 1 on a timeout.
const { io } = require("socket.io-client");

const [url, room] = process.argv.slice(2);
const WAIT = 8000;

function connect() {
  return new Promise((resolve, reject) => {
    const socket = io(url, { reconnection: false, timeout: WAIT });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

function next(socket, event, count = 1) {
  return new Promise((resolve, reject) => {
    const got = [];
    const timer = setTimeout(() => reject(new Error(`no ${event} (${got.length}/${count})`)), WAIT);
    const on = (data) => {
      got.push(data);
      if (got.length === count) {
        clearTimeout(timer);
        socket.off(event, on);
        resolve(count === 1 ? got[0] : got);
      }
    };
    socket.on(event, on);
  });
}

async function main() {
  const out = {};
  // The broadcaster makes the room up; the app sends create_room without an ack.
  const broadcaster = await connect();
  const joinedAsBroadcaster = next(broadcaster, "viewers");
  broadcaster.emit("create_room", room);
  await joinedAsBroadcaster;
  const viewer = await connect();
  const joinedAsViewer = next(viewer, "viewers");
  viewer.emit("join_room", room);
  await joinedAsViewer;

  const hearts = next(broadcaster, "upvote", 3);
  for (let i = 0; i < 3; i += 1) viewer.emit("upvote", room);
  out.upvotes = await hearts;

  const echo = next(broadcaster, "comment");
  viewer.emit("comment", { roomKey: room, text: "hello <i>there</i>", userName: "Ann", color: "#f0a" });
  out.comment = await echo;

  const closed = next(viewer, "close_room");
  out.closeAck = await broadcaster.timeout(WAIT).emitWithAck("close_room", room);
  out.closed = await closed;

  // A second broadcaster's disconnect closes its room too.
  const second = await connect();
  const secondIn = next(second, "viewers");
  second.emit("create_room", room);
  await secondIn;
  const rejoined = next(viewer, "viewers");
  viewer.emit("join_room", room);
  await rejoined;
  const gone = next(viewer, "close_room");
  second.disconnect();
  out.closedByDisconnect = await gone;

  broadcaster.disconnect();
  viewer.disconnect();
  console.log(JSON.stringify(out));
}

main().catch((err) => {
  console.error(String(err));
  process.exit(1);
});
