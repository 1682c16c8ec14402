"""What moderators' commands do in a room: timeouts, bans, deletions, clearing, modes,
blocked words, appointing moderators, the moderation log; each stored in the database
first, then published on the room bus so every node applies it the same way."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from strom.chat.bus import RoomBus
from strom.chat.events import (
    ChatCleared,
    MessageDeleted,
    ModeratorChanged,
    ModesChanged,
    ModLog,
    ModLogItem,
    RoomModes,
    UserRestricted,
    UserUnrestricted,
)
from strom.chat.moderation import Standing, may_act_on, may_appoint
from strom.chat.protocol import (
    AddModerator,
    Ban,
    Clear,
    Delete,
    ErrorCode,
    GetModLog,
    RemoveModerator,
    SetBlockedWords,
    SetModes,
    Timeout,
    Unban,
    is_guest_name,
)
from strom.chat.room import Identity, Member, Room
from strom.errors import StromError
from strom.store import Store
from strom.store.chat import ChatSettingsInfo

log = logging.getLogger(__name__)


def ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


@dataclasses.dataclass(frozen=True)
class _Target:
    name: str
    key: str
    user_id: int | None
    standing: Standing


class CommandRefused(StromError):
    """A command is refused: answered with an error event to its sender."""

    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ModerationCommands:
    def __init__(self, store: Store, bus: RoomBus, room: Callable[[str], Room | None]) -> None:
        self.store = store
        self.bus = bus
        self.room = room

    def handlers(self) -> dict[type[Any], Callable[[Room, Member, Any], Awaitable[None]]]:
        return {
            Delete: self._delete,
            Timeout: self._timeout,
            Ban: self._ban,
            Unban: self._unban,
            Clear: self._clear,
            SetModes: self._set_modes,
            SetBlockedWords: self._set_blocked_words,
            AddModerator: self._add_moderator,
            RemoveModerator: self._remove_moderator,
            GetModLog: self._modlog,
        }

    def _moderator(self, room: Room, member: Member) -> Standing:
        standing = room.standing(member.identity)
        if not standing.can_moderate:
            raise CommandRefused(ErrorCode.NOT_ALLOWED, "only the owner and moderators can do that")
        return standing

    async def _target(self, room: Room, name: str) -> _Target:
        if is_guest_name(name):
            return _Target(name, f"g:{name}", None, Standing())
        user = await self.store.users.get(name)
        if user is None:
            raise CommandRefused(ErrorCode.NOT_FOUND, f"no user called {name!r}")
        ident = Identity(user.username, user.id, user.is_admin)
        return _Target(user.username, ident.key, user.id, room.standing(ident))

    async def _restrict(
        self, room: Room, member: Member, name: str, seconds: int | None, reason: str
    ) -> None:
        actor = self._moderator(room, member)
        target = await self._target(room, name)
        if not may_act_on(actor, target.standing):
            raise CommandRefused(ErrorCode.NOT_ALLOWED, f"you cannot act on {target.name}")
        until = time.time() + seconds if seconds is not None else None
        by = member.identity.name
        await self.store.moderation.ban(
            room.name,
            target.key,
            user_id=target.user_id,
            target_name=target.name,
            until=datetime.fromtimestamp(until, UTC) if until is not None else None,
            reason=reason,
            by=by,
        )
        await self.store.chat.delete_messages_by(room.name, target.user_id, target.name)
        action = "ban" if seconds is None else "timeout"
        note = f"{seconds} s {reason}" if seconds is not None else reason
        await self.store.moderation.log(room.name, by, action, target.name, note.strip())
        log.info("chat %s: %s %s %s", room.name, by, action, target.name)
        self.bus.publish(
            room.name,
            UserRestricted(
                target.name,
                target.key,
                round(until * 1000) if until is not None else None,
                by,
                reason,
            ),
        )

    async def _timeout(self, room: Room, member: Member, command: Timeout) -> None:
        await self._restrict(room, member, command.user, command.seconds, command.reason)

    async def _ban(self, room: Room, member: Member, command: Ban) -> None:
        await self._restrict(room, member, command.user, None, command.reason)

    async def _unban(self, room: Room, member: Member, command: Unban) -> None:
        self._moderator(room, member)
        target = await self._target(room, command.user)
        if not await self.store.moderation.unban(room.name, target.key):
            raise CommandRefused(ErrorCode.NOT_FOUND, f"{target.name} is not banned or timed out")
        by = member.identity.name
        await self.store.moderation.log(room.name, by, "unban", target.name)
        log.info("chat %s: %s unban %s", room.name, by, target.name)
        self.bus.publish(room.name, UserUnrestricted(target.name, target.key, by))

    async def _delete(self, room: Room, member: Member, command: Delete) -> None:
        actor = self._moderator(room, member)
        message = await self.store.chat.message(room.name, command.id)
        if message is None:
            raise CommandRefused(ErrorCode.NOT_FOUND, f"no message {command.id} in this chat")
        author = (
            room.standing(Identity(message.author, message.user_id, message.author_is_admin))
            if message.user_id is not None
            else Standing()
        )
        if not may_act_on(actor, author):
            raise CommandRefused(
                ErrorCode.NOT_ALLOWED, f"you cannot delete {message.author}'s messages"
            )
        if not await self.store.chat.delete_message(room.name, command.id):
            raise CommandRefused(ErrorCode.NOT_FOUND, f"no message {command.id} in this chat")
        by = member.identity.name
        await self.store.moderation.log(
            room.name, by, "delete", message.author, f"message {command.id}"
        )
        self.bus.publish(room.name, MessageDeleted(command.id, by))

    async def _clear(self, room: Room, member: Member, command: Clear) -> None:
        self._moderator(room, member)
        count = await self.store.chat.clear(room.name)
        by = member.identity.name
        await self.store.moderation.log(room.name, by, "clear", None, f"{count} messages")
        log.info("chat %s: %s cleared the chat", room.name, by)
        self.bus.publish(room.name, ChatCleared(by))

    async def _set_modes(self, room: Room, member: Member, command: SetModes) -> None:
        self._moderator(room, member)
        changes = {
            name: value
            for name in ("slow_mode", "followers_only", "followers_min_minutes",
                         "block_links", "require_account")
            if (value := getattr(command, name)) is not None
        }  # fmt: skip
        if not changes:
            raise CommandRefused(
                ErrorCode.BAD_REQUEST, "set_modes needs at least one mode to change"
            )
        modes = dataclasses.replace(room.modes, **changes)
        if modes.require_account != room.modes.require_account:
            if await self.store.channels.get(room.name) is None:
                raise CommandRefused(
                    ErrorCode.BAD_REQUEST,
                    "this channel has no account to keep that setting: guests may always write",
                )
            await self.store.channels.update(
                room.name, require_account_for_chat=modes.require_account
            )
        await self._save_modes(
            room, member, modes, ", ".join(f"{k}={v}" for k, v in changes.items())
        )

    async def _set_blocked_words(
        self, room: Room, member: Member, command: SetBlockedWords
    ) -> None:
        self._moderator(room, member)
        modes = dataclasses.replace(room.modes, blocked_words=command.words)
        await self._save_modes(room, member, modes, f"{len(command.words)} blocked words")

    async def _save_modes(self, room: Room, member: Member, modes: RoomModes, detail: str) -> None:
        await self.store.chat.save_settings(
            room.name,
            ChatSettingsInfo(
                slow_mode_seconds=modes.slow_mode,
                followers_only=modes.followers_only,
                followers_min_minutes=modes.followers_min_minutes,
                blocked_words=modes.blocked_words,
                block_links=modes.block_links,
            ),
        )
        by = member.identity.name
        await self.store.moderation.log(room.name, by, "modes", None, detail)
        self.bus.publish(room.name, ModesChanged(modes, by))

    async def _appoint(self, room: Room, member: Member, name: str, added: bool) -> None:
        if not may_appoint(room.standing(member.identity)):
            raise CommandRefused(ErrorCode.NOT_ALLOWED, "only the owner can appoint moderators")
        target = await self._target(room, name)
        if target.user_id is None:
            raise CommandRefused(ErrorCode.BAD_REQUEST, "guests cannot be moderators")
        if target.standing.is_owner:
            raise CommandRefused(ErrorCode.BAD_REQUEST, "the owner moderates their room already")
        moderation = self.store.moderation
        appoint = moderation.add_moderator if added else moderation.remove_moderator
        changed = await appoint(room.name, target.user_id)
        if not changed:
            state = "already" if added else "not"
            raise CommandRefused(ErrorCode.BAD_REQUEST, f"{target.name} is {state} a moderator")
        by = member.identity.name
        await moderation.log(room.name, by, "mod" if added else "unmod", target.name)
        log.info("chat %s: %s %s %s", room.name, by, "mod" if added else "unmod", target.name)
        self.bus.publish(room.name, ModeratorChanged(target.name, target.user_id, added, by))

    async def _add_moderator(self, room: Room, member: Member, command: AddModerator) -> None:
        await self._appoint(room, member, command.user, True)

    async def _remove_moderator(self, room: Room, member: Member, command: RemoveModerator) -> None:
        await self._appoint(room, member, command.user, False)

    async def _modlog(self, room: Room, member: Member, command: GetModLog) -> None:
        self._moderator(room, member)
        entries = await self.moderation_log(room.name, command.limit)
        member.send(ModLog(entries, command.nonce).to_client())

    async def moderation_log(self, name: str, limit: int) -> tuple[ModLogItem, ...]:
        found = await self.store.moderation.log_entries(name, limit)
        return tuple(
            ModLogItem(ms(e.created_at), e.actor, e.action, e.target, e.detail) for e in found
        )

    async def standing(self, name: str, username: str) -> Standing:
        """``username``'s rank in room ``name`` (for the JSON endpoints)."""
        user = await self.store.users.get(username)
        if user is None or user.suspended:
            return Standing()
        room = self.room(name)
        moderators = (
            room.moderators if room is not None else await self.store.moderation.moderators(name)
        )
        return Standing(
            is_owner=user.username.lower() == name.lower(),
            is_moderator=user.id in moderators,
            is_admin=user.is_admin,
        )
