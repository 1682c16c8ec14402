"""Strom's build backend: setuptools, plus the players the watch page needs.

The watch page plays LL-HLS through hls.js and LL-DASH through dash.js, which
``scripts/vendor-frontend`` copies from npm (locked by ``package-lock.json``) into
``strom/web/static/vendor/`` — a directory git does not track. A wheel or sdist built
without them installs a Strom whose HLS fallback and DASH player never start, so building one first vendors the players (when npm is there) and refuses,
saying why, when they are still missing. An sdist carries them, so a wheel built from
an sdist needs no npm. Editable installs (the development checkout) are left alone:
``scripts/bootstrap`` vendors there.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 - the rest of the backend as it is

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "strom" / "web" / "static" / "vendor"
#: what the packages must carry (the players and their licences)
PLAYERS = ("hls.min.js", "hls.js.LICENSE.txt", "dash.all.min.js", "dash.js.LICENSE.txt")


class PlayersMissing(RuntimeError):
    pass


def missing() -> list[str]:
    return [name for name in PLAYERS if not (VENDOR / name).is_file()]


def vendor_players() -> None:
    """Vendor the players if they are not there yet; :class:`PlayersMissing` if that
    cannot be done here."""
    if not missing():
        return
    script = ROOT / "scripts" / "vendor-frontend"
    if script.is_file() and shutil.which("npm") and shutil.which("node"):
        subprocess.run([str(script)], cwd=ROOT, check=True)  # noqa: S603 - our own script
    if gone := missing():
        raise PlayersMissing(
            f"the web players are not vendored ({', '.join(gone)} missing from {VENDOR}): "
            "run scripts/vendor-frontend (it needs node and npm) before building, or "
            "build from an sdist, which carries them"
        )


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    vendor_players()
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    vendor_players()
    return _setuptools.build_sdist(sdist_directory, config_settings)
