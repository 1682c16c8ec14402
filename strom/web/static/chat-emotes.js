// The chat's built-in emotes: a word (Kappa, PogChamp...) or a :code: in a message shows
// as an emoji in a <span class="chat-emote"> whose title and label are the word. Only
// whole words count ("Kappa!" no, "Kappa" yes), and only text nodes are made, so a message
// stays text (chat-text.js). The picker (a button next to the input) inserts a word.

export const EMOTES = new Map([
  ["Kappa", "😏"],
  ["PogChamp", "😮"],
  ["LUL", "😂"],
  ["BibleThump", "😢"],
  ["Kreygasm", "😍"],
  ["4Head", "😄"],
  ["ResidentSleeper", "😴"],
  ["NotLikeThis", "🤦"],
  ["SeemsGood", "👍"],
  ["HeyGuys", "👋"],
  ["monkaS", "😰"],
  [":heart:", "❤️"],
  [":fire:", "🔥"],
  [":clap:", "👏"],
  [":100:", "💯"],
  [":eyes:", "👀"],
  [":thinking:", "🤔"],
  [":gg:", "🏆"],
  [":party:", "🎉"],
  [":rocket:", "🚀"],
  [":skull:", "💀"],
  [":sob:", "😭"],
]);

const WORD = /\S+/g;

function emote(word) {
  const span = document.createElement("span");
  span.className = "chat-emote";
  span.title = word;
  span.setAttribute("role", "img");
  span.setAttribute("aria-label", word);
  span.textContent = EMOTES.get(word);
  return span;
}

/** The nodes of a stretch of plain text: its emote words as emotes, the rest as text. */
export function emoteNodes(text) {
  const nodes = [];
  let at = 0;
  for (const match of text.matchAll(WORD)) {
    if (!EMOTES.has(match[0])) continue;
    if (match.index > at) nodes.push(document.createTextNode(text.slice(at, match.index)));
    nodes.push(emote(match[0]));
    at = match.index + match[0].length;
  }
  if (at < text.length) nodes.push(document.createTextNode(text.slice(at)));
  return nodes;
}

/** The emote picker: `button` opens `list` (filled here); a pick goes into `input`. */
export class EmotePicker {
  constructor(button, list, input) {
    this.button = button;
    this.list = list;
    this.input = input;
    for (const word of EMOTES.keys()) {
      const item = document.createElement("button");
      item.type = "button";
      item.className = "chat-emote-choice";
      item.dataset.emote = word;
      item.title = word;
      item.append(emote(word));
      list.append(item);
    }
    button.addEventListener("click", () => (this.list.hidden ? this.open() : this.close()));
    list.addEventListener("click", (ev) => {
      const item = ev.target.closest("[data-emote]");
      if (item) this.insert(item.dataset.emote);
    });
    list.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") this.close(true);
    });
    document.addEventListener("click", (ev) => {
      if (!this.list.hidden && !this.list.contains(ev.target) && !this.button.contains(ev.target)) this.close();
    });
  }

  open() {
    this.list.hidden = false;
    this.button.setAttribute("aria-expanded", "true");
    this.list.querySelector("button")?.focus();
  }

  close(refocus = false) {
    this.list.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
    if (refocus) this.button.focus();
  }

  insert(word) {
    const input = this.input;
    if (input.disabled) return;
    const start = input.selectionStart ?? input.value.length;
    const end = input.selectionEnd ?? start;
    const before = input.value.slice(0, start);
    const after = input.value.slice(end);
    const text = `${before && !/\s$/.test(before) ? " " : ""}${word}${after && !/^\s/.test(after) ? " " : " "}`;
    input.value = (before + text + after).slice(0, input.maxLength > 0 ? input.maxLength : undefined);
    const caret = before.length + text.length;
    input.setSelectionRange(caret, caret);
    this.close();
    input.focus();
  }
}
