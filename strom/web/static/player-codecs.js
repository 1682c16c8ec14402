// Which codec of a stream this browser cannot play, in words a viewer understands: the
// player says "This stream is HEVC (H.265); your browser cannot play it." rather than
// showing a black box.

const CODEC_NAMES = [
  [/^(hvc1|hev1)\b/, "HEVC (H.265)"],
  [/^av01\b/, "AV1"],
  [/^vp09\b/, "VP9"],
  [/^vp8\b/, "VP8"],
  [/^(avc1|avc3)\b/, "H.264"],
  [/^opus$/, "Opus"],
  [/^mp4a\b/, "AAC"],
];

export function codecName(codec) {
  const lower = codec.trim().toLowerCase();
  for (const [pattern, name] of CODEC_NAMES) if (pattern.test(lower)) return name;
  return null;
}

// `mime` is what the server's init says, e.g. video/mp4; codecs="hvc1.1.6.L93.B0,opus".
// Returns the sentence for the player, or null when no codec it knows is to blame (an
// unknown codec string: the player tries its other transports, as for any MSE refusal).
export function unplayableCodec(mime, MediaSourceClass) {
  const match = /codecs="([^"]*)"/.exec(mime);
  if (!match || !MediaSourceClass) return null;
  const container = mime.split(";")[0].trim();
  const failing = match[1]
    .split(",")
    .filter((codec) => codec.trim() && !MediaSourceClass.isTypeSupported(`${container}; codecs="${codec.trim()}"`));
  const known = failing.map(codecName).filter(Boolean);
  if (known.length === 0) return null;
  const names = [...new Set(known)].join(" and ");
  return `This stream is ${names}; your browser cannot play it.`;
}

// Whether the browser plays every codec of `codecs` (a master playlist's CODECS, e.g.
// "avc1.64001e,mp4a.40.2") in fragmented MP4 through Media Source Extensions.
export function playableCodecs(codecs, MediaSourceClass) {
  if (!MediaSourceClass) return false;
  const list = codecs.split(",").map((c) => c.trim()).filter(Boolean);
  return list.every((codec) => MediaSourceClass.isTypeSupported(`video/mp4; codecs="${codec}"`));
}
