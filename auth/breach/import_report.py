"""What one `corpus import` did: totals, a line per FILE argument, and the first lines
worth a look (malformed, or read as cp1252), each named by file and line number."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SAMPLES = 10


@dataclass
class SourceReport:
    """One FILE argument (a folder counts as one, with its number of files)."""

    path: str
    files: int = 0
    format: str = ""
    encodings: list[str] = field(default_factory=list)
    lines: int = 0
    blank: int = 0
    bad: int = 0
    cp1252_lines: int = 0


@dataclass
class ImportReport:
    breach: str
    kind: str
    mode: str = "new"  # ImportMode: what happened to the breach's earlier import
    format: str = ""
    sources: list[SourceReport] = field(default_factory=list)
    bad_samples: list[tuple[str, int, str]] = field(default_factory=list)
    cp1252_samples: list[tuple[str, int]] = field(default_factory=list)
    password_entries: int = 0
    email_entries: int = 0
    valid_credentials: int = 0
    seconds: float = 0.0

    @property
    def lines(self) -> int:
        return sum(s.lines for s in self.sources)

    @property
    def blank(self) -> int:
        return sum(s.blank for s in self.sources)

    @property
    def bad(self) -> int:
        return sum(s.bad for s in self.sources)

    @property
    def cp1252_lines(self) -> int:
        return sum(s.cp1252_lines for s in self.sources)

    def bad_line(self, source: SourceReport, file: str, line: int, message: str) -> None:
        source.bad += 1
        if len(self.bad_samples) < SAMPLES:
            self.bad_samples.append((file, line, message))

    def cp1252_line(self, source: SourceReport, file: str, line: int) -> None:
        source.cp1252_lines += 1
        if len(self.cp1252_samples) < SAMPLES:
            self.cp1252_samples.append((file, line))

    def as_dict(self) -> dict[str, Any]:
        return {
            "breach": self.breach,
            "kind": self.kind,
            "mode": self.mode,
            "format": self.format,
            "lines": self.lines,
            "blank": self.blank,
            "bad": self.bad,
            "bad_samples": [{"file": f, "line": n, "error": m} for f, n, m in self.bad_samples],
            "cp1252_lines": self.cp1252_lines,
            "cp1252_samples": [{"file": f, "line": n} for f, n in self.cp1252_samples],
            "sources": [asdict(s) for s in self.sources],
            "password_entries": self.password_entries,
            "email_entries": self.email_entries,
            "valid_credentials": self.valid_credentials,
            "seconds": round(self.seconds, 3),
        }
