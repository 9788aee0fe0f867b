"""Small parsers the commands share: comma-separated lists and notes files."""

from __future__ import annotations

from pathlib import Path

from physrep.errors import PhysrepError


def csv_list(text: str, kind: type) -> list:
    try:
        return [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise PhysrepError(f"'{text}' is not a comma-separated list of {kind.__name__}") from None


def read_notes(path: Path | None) -> str:
    if path is None:
        return ""
    if not path.is_file():
        raise PhysrepError("no such notes file", path)
    return path.read_text()
