"""A CSV file read as a stream of (line number, row): any size, constant memory.

The encoding: a UTF-8 or UTF-16 byte-order mark says it; otherwise "auto" reads UTF-8 when the
start of the file is valid UTF-8, else the fallback (cp1251: what Excel in Russian saves). A byte
that the chosen encoding cannot read later on stops the import with the line and what to set,
rather than importing mojibake. The delimiter: "auto" takes whichever of , ; TAB | the header
line uses most. Line numbers are the file's own (a quoted field may span lines).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from crm.errors import CrmError

_SAMPLE = 64 * 1024
_DELIMITERS = ",;\t|"
csv.field_size_limit(1024 * 1024)


class ImportFileError(CrmError):
    """The file as a whole cannot be read (encoding, header); nothing more is imported."""


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    field: str
    reason: str

    def describe(self, path: str) -> str:
        where = f" {self.field}:" if self.field else ""
        return f"{path}:{self.line}:{where} {self.reason}"


def detect_encoding(head: bytes, configured: str, fallback: str) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if configured != "auto":
        return configured
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return fallback
    return "utf-8"


def detect_delimiter(header_line: str, configured: str) -> str:
    if configured != "auto":
        return configured
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class CsvFile:
    """Open with `with CsvFile(path, …) as f:`; `f.header`, then iterate `f.rows()`."""

    def __init__(self, path: str | Path, *, encoding: str = "auto", fallback: str = "cp1251",
                 delimiter: str = "auto") -> None:
        self.path = str(path)
        self._raw = open(path, "rb")  # noqa: SIM115 (closed by __exit__)
        try:
            first = self._open(encoding, fallback)
        except BaseException:
            # Refused before `with` took the file: close it here (a server goes on running).
            self._raw.close()
            raise
        self.delimiter = detect_delimiter(first, delimiter)
        self.header = [h.strip() for h in next(csv.reader([first], delimiter=self.delimiter))]
        self._reader = csv.reader(self._text, delimiter=self.delimiter)

    def _open(self, encoding: str, fallback: str) -> str:
        """The header line, read in the file's encoding."""
        self.size = Path(self.path).stat().st_size
        self.encoding = detect_encoding(self._raw.read(_SAMPLE), encoding, fallback)
        self._raw.seek(0)
        self._text = io.TextIOWrapper(self._raw, encoding=self.encoding, newline="")
        try:
            first = self._text.readline()
        except UnicodeDecodeError as e:
            raise self._undecodable(1, e) from None
        if not first.strip():
            raise ImportFileError(f"{self.path}: the file is empty (a header line is needed)")
        return first

    def __enter__(self) -> CsvFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._text.close()

    @property
    def position(self) -> int:
        """Bytes read so far (for a progress bar)."""
        return self._raw.tell()

    def column(self, name: str) -> int | None:
        wanted = name.strip().lower()
        for i, h in enumerate(self.header):
            if h.lower() == wanted:
                return i
        return None

    def rows(self) -> Iterator[tuple[int, Sequence[str]] | BadRow]:
        """Each row with its line, or a BadRow for one the CSV rules cannot read."""
        width = len(self.header)
        while True:
            first = self._reader.line_num + 2  # where the record starts (the header is line 1)
            try:
                row = next(self._reader)
            except StopIteration:
                return
            except UnicodeDecodeError as e:
                raise self._undecodable(self._reader.line_num + 2, e) from None
            except csv.Error as e:
                yield BadRow(first, "", f"not readable as CSV: {e}")
                continue
            line = first  # a quoted field may span lines: a record is named by its first
            if not any(cell.strip() for cell in row):
                continue  # blank lines
            if len(row) > width and any(cell.strip() for cell in row[width:]):
                yield BadRow(line, "", f"{len(row)} fields, the header has {width}")
                continue
            yield line, row

    def _undecodable(self, line: int, e: UnicodeDecodeError) -> ImportFileError:
        return ImportFileError(
            f"{self.path}: near line {line}: not valid {self.encoding} ({e.reason}); the file "
            "may be in another encoding: set encoding = \"cp1251\" (or the right one) in the "
            "config's [orders.csv] / [customers.csv]")
