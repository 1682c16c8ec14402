"""Categories a new site starts with, and how a category name becomes its URL slug.

:data:`INITIAL_CATEGORIES` is what migration ``0001`` inserts. It is a snapshot: to give
existing sites more categories, add them in a new migration (admins can add their own at
any time through the store).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from strom.store.errors import InvalidCategory

CATEGORY_NAME_MAX = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CATEGORY_SLUG_MAX = 80


@dataclass(frozen=True)
class SeedCategory:
    name: str
    is_game: bool

    @property
    def slug(self) -> str:
        return slugify(self.name)


def category_name(name: object) -> tuple[str, str]:
    """A category name as typed (spaces collapsed) and its slug; raises
    :class:`InvalidCategory` for a name too long, with control characters or without a
    letter or digit."""
    text = " ".join(name.split()) if isinstance(name, str) else ""
    slug = slugify(text)
    if not slug or len(text) > CATEGORY_NAME_MAX or _CONTROL.search(text):
        raise InvalidCategory(
            f"a category name has 1-{CATEGORY_NAME_MAX} characters, some letters or digits "
            "among them",
            "name",
        )
    return text, slug


def slugify(name: str) -> str:
    """``"Science & Technology"`` -> ``"science-and-technology"``, ``"Pokémon GO"`` ->
    ``"pokemon-go"``: lower-case ASCII letters and digits joined by single hyphens."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = text.lower().replace("&", " and ").replace("+", " plus ")
    text = re.sub(r"['.]", "", text)  # "Tom Clancy's" -> "tom-clancys", "Bros." -> "bros"
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text[:CATEGORY_SLUG_MAX].rstrip("-")


_NON_GAMES = (
    "Just Chatting",
    "Music",
    "Art",
    "Science & Technology",
    "Software and Game Development",
    "Sports",
    "Travel & Outdoors",
    "Talk Shows & Podcasts",
    "Food & Drink",
    "Makers & Crafting",
    "Fitness & Health",
    "Beauty & Body Art",
    "ASMR",
    "Co-working & Studying",
    "Writing & Reading",
    "Animals, Aquariums, and Zoos",
    "DJs",
    "Politics",
    "Special Events",
    "Games + Demos",
    "Retro",
    "Education",
    "Photography",
    "Gardening",
)

_GAMES = (
    "League of Legends",
    "Valorant",
    "Counter-Strike 2",
    "Dota 2",
    "Fortnite",
    "Minecraft",
    "Grand Theft Auto V",
    "Apex Legends",
    "Call of Duty: Warzone",
    "Overwatch 2",
    "World of Warcraft",
    "Hearthstone",
    "Rocket League",
    "Rust",
    "Dead by Daylight",
    "Escape from Tarkov",
    "Tom Clancy's Rainbow Six Siege",
    "PUBG: Battlegrounds",
    "Teamfight Tactics",
    "Elden Ring",
    "The Legend of Zelda: Tears of the Kingdom",
    "Super Mario Bros. Wonder",
    "Stardew Valley",
    "Terraria",
    "Among Us",
    "Fall Guys",
    "Baldur's Gate 3",
    "Cyberpunk 2077",
    "The Witcher 3: Wild Hunt",
    "Red Dead Redemption 2",
    "Sea of Thieves",
    "Path of Exile 2",
    "Diablo IV",
    "Final Fantasy XIV Online",
    "Old School RuneScape",
    "Genshin Impact",
    "Street Fighter 6",
    "Tekken 8",
    "Super Smash Bros. Ultimate",
    "Chess",
    "EA Sports FC 25",
    "NBA 2K25",
    "iRacing",
    "Factorio",
    "Hollow Knight",
    "Balatro",
    "Lethal Company",
    "Phasmophobia",
    "Marvel Rivals",
    "Helldivers 2",
    "Satisfactory",
    "Kerbal Space Program",
    "osu!",
    "GeoGuessr",
    "Slay the Spire",
    "Dark Souls III",
    "Monster Hunter Wilds",
    "The Sims 4",
    "Animal Crossing: New Horizons",
    "Roblox",
    "Destiny 2",
    "Warframe",
    "StarCraft II",
    "Age of Empires II",
    "Magic: The Gathering",
    "Pokémon Trading Card Game Live",
    "Hades II",
    "Tabletop RPGs",
    "Board Games",
)

INITIAL_CATEGORIES: tuple[SeedCategory, ...] = tuple(
    [SeedCategory(name, is_game=False) for name in _NON_GAMES]
    + [SeedCategory(name, is_game=True) for name in _GAMES]
)
