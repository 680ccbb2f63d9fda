"""Where `corpus import` reads: files, stdin (`-`), and folders walked for their files.

A folder is walked whole, sub-folders too (the tree `AB/ABCDE.txt`), and nothing in it
is skipped in silence: a folder that holds per-prefix files (named after their 5-hex
prefix, as HIBP's downloader names them) must hold nothing else, and a prefix read from a
file's name must agree with the hex-named folders above it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from auth.breach.formats import prefix_from_name
from auth.errors import InvalidInput

SHOWN = 5  # names listed in a refusal before "and N more"
_HEX_FOLDER = re.compile(r"[0-9A-Fa-f]{1,4}")


@dataclass(frozen=True)
class CorpusFile:
    path: str  # `-` for stdin
    prefix: bytes | None  # read from its name (ABCDE.txt -> b"ABCDE"), if it has one


class Source:
    """One FILE argument of `corpus import`: a file (plain, .gz, .bz2, .xz), stdin (`-`),
    or a folder of files."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = "-" if path == "-" else Path(path).name
        if path != "-" and not Path(path).exists():
            raise InvalidInput(f"{path}: no such file or folder")
        self._files: list[CorpusFile] | None = None

    @property
    def is_dir(self) -> bool:
        return self.path != "-" and Path(self.path).is_dir()

    def files(self) -> list[CorpusFile]:
        """The files to read, in order (per-prefix files by prefix); walked once."""
        if self._files is None:
            if self.path == "-":
                self._files = [CorpusFile("-", None)]
            elif self.is_dir:
                self._files = walk(Path(self.path))
            else:
                self._files = [CorpusFile(self.path, prefix_from_name(self.name))]
        return self._files

    def total_bytes(self) -> int | None:
        if self.path == "-":
            return None
        return sum(os.stat(f.path).st_size for f in self.files())

    def default_breach_name(self) -> str:
        if self.path == "-":
            raise InvalidInput("--breach NAME is required when reading from stdin")
        name = self.name
        for ext in (".gz", ".bz2", ".xz", ".txt", ".csv"):
            name = name.removesuffix(ext)
        return name


def walk(root: Path) -> list[CorpusFile]:
    """Every file under `root`; InvalidInput when the tree cannot be read as one corpus."""
    found: list[tuple[CorpusFile, tuple[str, ...]]] = []

    def unreadable(exc: OSError) -> None:
        raise InvalidInput(f"{exc.filename}: could not list the folder: {exc.strerror}")

    for folder, dirs, names in os.walk(root, onerror=unreadable):
        linked = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
        if linked:
            raise InvalidInput(
                f"{os.path.join(folder, linked[0])} is a link to a folder, which is not "
                "walked: import the folder it points to, or copy it in"
            )
        inside = Path(folder).relative_to(root).parts
        for name in names:
            found.append((CorpusFile(os.path.join(folder, name), prefix_from_name(name)), inside))
    if not found:
        raise InvalidInput(f"{root}: no files inside")
    named = [(f, inside) for f, inside in found if f.prefix is not None]
    if named and len(named) < len(found):
        _refuse_strays(root, [f for f, _ in found if f.prefix is None])
    for f, inside in named:
        _check_folders(f, inside)
    return sorted((f for f, _ in found), key=lambda f: (f.prefix or b"", f.path))


def _refuse_strays(root: Path, strays: Sequence[CorpusFile]) -> None:
    shown = ", ".join(
        os.path.relpath(f.path, root) for f in sorted(strays, key=lambda f: f.path)[:SHOWN]
    )
    more = f" and {len(strays) - SHOWN} more" if len(strays) > SHOWN else ""
    raise InvalidInput(
        f"{root} holds per-prefix files (named like ABCDE.txt) and {len(strays)} other "
        f"file(s): {shown}{more}. A suffix without its prefix cannot be stored, and no file "
        "is skipped in silence: name each per-prefix file after its 5-hex prefix, or move "
        "the other files out of the folder"
    )


def _check_folders(f: CorpusFile, inside: tuple[str, ...]) -> None:
    prefix = (f.prefix or b"").decode("ascii")
    for part in inside:
        if _HEX_FOLDER.fullmatch(part) and not prefix.startswith(part.upper()):
            raise InvalidInput(
                f"{f.path}: its name says prefix {prefix}, its folder {part}/ says otherwise; "
                "is it in the wrong folder, or misnamed?"
            )
