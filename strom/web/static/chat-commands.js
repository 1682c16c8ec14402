// Slash commands typed in the chat box, as on Twitch: /ban, /timeout, /unban (/untimeout),
// /mod, /unmod and /help. Each becomes the protocol command of docs/chat-protocol.md;
// a mistake (bad syntax, not a moderator) is said next to the input and nothing is sent.

const DEFAULT_TIMEOUT = 600; // seconds, as Twitch's /timeout without a duration
const MAX_TIMEOUT = 14 * 86400;
const NAME = /^@?([A-Za-z0-9_][A-Za-z0-9_-]{0,31})$/;
const UNITS = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

export const HELP =
  "Commands: /ban user [reason], /timeout user [seconds] [reason], /unban user, " +
  "/mod user and /unmod user (moderators and the streamer).";

function user(word, usage) {
  const match = NAME.exec(word ?? "");
  if (!match) throw new Error(`Usage: ${usage}`);
  return match[1];
}

/** "600", "10m", "2h", "1d" → seconds, or null. */
function seconds(word) {
  const match = /^(\d{1,7})([smhdw]?)$/i.exec(word ?? "");
  if (!match) return null;
  return Number(match[1]) * UNITS[(match[2] || "s").toLowerCase()];
}

const COMMANDS = {
  ban: { who: "mod", usage: "/ban user [reason]", make: ([u, ...why]) => ({ type: "ban", user: u, reason: why.join(" ") }) },
  timeout: {
    who: "mod",
    usage: "/timeout user [seconds] [reason]",
    make: ([u, time, ...why]) => {
      let s = seconds(time);
      if (s === null) {
        if (time !== undefined) why.unshift(time);
        s = DEFAULT_TIMEOUT;
      }
      if (s < 1 || s > MAX_TIMEOUT) throw new Error("A timeout lasts from 1 second to 2 weeks.");
      return { type: "timeout", user: u, seconds: s, reason: why.join(" ") };
    },
  },
  unban: { who: "mod", usage: "/unban user", make: ([u]) => ({ type: "unban", user: u }) },
  untimeout: { who: "mod", usage: "/untimeout user", make: ([u]) => ({ type: "unban", user: u }) },
  mod: { who: "owner", usage: "/mod user", make: ([u]) => ({ type: "mod", user: u }) },
  unmod: { who: "owner", usage: "/unmod user", make: ([u]) => ({ type: "unmod", user: u }) },
};

/**
 * What a line typed in the chat box asks for: null (a message, not a command),
 * {help: text}, {command: {...}} to send, or {error: text} to show.
 */
export function slashCommand(text, perm) {
  if (!text.startsWith("/") || text.startsWith("//")) return null;
  const [head, ...words] = text.slice(1).split(/\s+/);
  const name = head.toLowerCase();
  if (name === "help" || name === "commands") return { help: HELP };
  const spec = COMMANDS[name];
  if (!spec) return { error: `Unknown command /${head.slice(0, 30)}. Type /help for the list.` };
  const owner = Boolean(perm?.is_owner || perm?.is_admin);
  if (spec.who === "owner" && !owner) return { error: `Only the streamer can use /${name}.` };
  if (spec.who === "mod" && !perm?.can_moderate) return { error: `Only the streamer and moderators can use /${name}.` };
  try {
    words[0] = user(words[0], spec.usage);
    const command = spec.make(words);
    if (command.reason === "") delete command.reason;
    if (command.reason?.length > 200) throw new Error("A reason has at most 200 characters.");
    return { command };
  } catch (err) {
    return { error: err.message };
  }
}
