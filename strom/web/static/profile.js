// The profile settings page (/settings/profile): uploads the avatar (the picture itself is
// the body of POST /api/v1/me/avatar) and removes it (DELETE). A refused picture shows the
// server's reason ("The picture is larger than 2 MiB."). Text goes in with textContent only.

import { ApiError, csrfToken, fetchJson } from "./api.js";

class AvatarEditor {
  constructor(root) {
    this.api = root.dataset.avatarApi;
    this.file = root.querySelector('[data-role="avatar-file"]');
    this.image = root.querySelector('[data-role="avatar-image"]');
    this.initial = root.querySelector('[data-role="avatar-initial"]');
    this.remove = root.querySelector('[data-role="avatar-remove"]');
    this.status = root.querySelector('[data-role="avatar-status"]');
    this.file.addEventListener("change", () => this.upload());
    this.remove.addEventListener("click", () => this.clear());
  }

  say(text, error = false) {
    this.status.textContent = text;
    this.status.classList.toggle("form-error", error);
  }

  show(url) {
    this.image.hidden = !url;
    if (url) this.image.src = url;
    else this.image.removeAttribute("src");
    this.initial.hidden = Boolean(url);
    this.remove.hidden = !url;
  }

  async upload() {
    const picked = this.file.files?.[0];
    if (!picked) return;
    this.say("Uploading…");
    try {
      const response = await fetch(this.api, {
        method: "POST",
        body: picked,
        credentials: "same-origin",
        headers: {
          Accept: "application/json",
          "Content-Type": picked.type || "application/octet-stream",
          "X-CSRF-Token": csrfToken(),
        },
      });
      let data = null;
      try {
        data = await response.json();
      } catch {
        data = null;
      }
      if (!response.ok) {
        throw new ApiError(typeof data?.error === "string" ? data.error : `HTTP ${response.status}`, response.status);
      }
      this.show(data.avatar_url);
      this.say("Avatar saved.");
    } catch (err) {
      this.say(err instanceof ApiError ? err.message : "Could not reach the server.", true);
    } finally {
      this.file.value = "";
    }
  }

  async clear() {
    try {
      await fetchJson(this.api, { method: "DELETE" });
      this.show(null);
      this.say("Avatar removed.");
    } catch (err) {
      this.say(err instanceof ApiError ? err.message : "Could not reach the server.", true);
    }
  }
}

const root = document.querySelector("[data-profile-settings]");
if (root) new AvatarEditor(root);
