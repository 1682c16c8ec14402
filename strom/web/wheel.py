"""A wheel of the running Strom, so the site can serve its own client.

The wheel is assembled from the package's files as they are on disk (an installed
package or an editable checkout alike) and the installed distribution's metadata, the
way a build backend lays it out (PEP 427 / the binary distribution format spec): the
``strom/`` tree, then ``strom-VERSION.dist-info/`` with METADATA, WHEEL,
entry_points.txt and RECORD (each file's sha256 and size). Nothing is compiled, so
the wheel is ``py3-none-any`` and works on Linux, macOS and Windows.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import logging
import os
import re
import tempfile
import zipfile
from pathlib import Path

import strom

log = logging.getLogger(__name__)

DIST = "strom"
#: what a wheel's file name ends with: pure Python, any platform
TAG = "py3-none-any"
#: the zip timestamp of every entry (zip cannot store earlier ones): reproducible bytes
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


def wheel_name(version: str) -> str:
    """``strom-0.1.0-py3-none-any.whl`` (the version normalised as PEP 427 asks)."""
    safe = re.sub(r"[^\w\d.]+", "_", version, flags=re.UNICODE)
    return f"{DIST}-{safe}-{TAG}.whl"


def _metadata(version: str) -> tuple[str, str]:
    """METADATA and entry_points.txt of the installed distribution, when it is this
    version; a minimal pair otherwise (running from a source tree)."""
    try:
        dist = importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None and dist.version == version:
        # An installed wheel has METADATA; a source tree's egg-info has PKG-INFO, the
        # same format.
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
        entry_points = dist.read_text("entry_points.txt")
        if text:
            return text, entry_points or _ENTRY_POINTS
    log.warning("no installed metadata for strom %s: the wheel gets minimal metadata", version)
    minimal = (
        f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {version}\n"
        "Summary: Self-hosted live streaming (server and streaming client)\n"
        "Requires-Python: >=3.11\nRequires-Dist: aiohttp>=3.10\nRequires-Dist: av>=14\n"
    )
    return minimal, _ENTRY_POINTS


_ENTRY_POINTS = "[console_scripts]\nstrom = strom.cli:main\n"


def _package_files(root: Path) -> list[tuple[str, Path]]:
    """(archive name, file) for every file of the package under ``root``, sorted."""
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(names):
            if name.endswith(_SKIP_SUFFIXES) or name.startswith("."):
                continue
            path = Path(folder) / name
            arcname = path.relative_to(root.parent).as_posix()
            files.append((arcname, path))
    return files


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def build_wheel(out_dir: Path, version: str = strom.__version__) -> Path:
    """Write the wheel into ``out_dir`` (atomically: a reader never sees half of it) and
    return its path. Blocking: call it off the event loop."""
    package_root = Path(strom.__file__).resolve().parent
    metadata, entry_points = _metadata(version)
    safe = wheel_name(version).removesuffix(f"-{TAG}.whl")
    info = f"{safe}.dist-info"
    generated = {
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: strom {version}\nRoot-Is-Purelib: true\nTag: {TAG}\n"
        ).encode(),
        f"{info}/entry_points.txt": entry_points.encode(),
        f"{info}/top_level.txt": b"strom\n",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / wheel_name(version)
    record: list[str] = []
    fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=".wheel-", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:

            def add(arcname: str, data: bytes) -> None:
                entry = zipfile.ZipInfo(arcname, _ZIP_TIME)
                entry.compress_type = zipfile.ZIP_DEFLATED
                entry.external_attr = 0o644 << 16
                zf.writestr(entry, data)
                record.append(f"{arcname},{_record_hash(data)},{len(data)}")

            for arcname, path in _package_files(package_root):
                add(arcname, path.read_bytes())
            for arcname, data in generated.items():
                add(arcname, data)
            record.append(f"{info}/RECORD,,")
            entry = zipfile.ZipInfo(f"{info}/RECORD", _ZIP_TIME)
            entry.external_attr = 0o644 << 16
            zf.writestr(entry, "\n".join(record) + "\n", zipfile.ZIP_DEFLATED)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
