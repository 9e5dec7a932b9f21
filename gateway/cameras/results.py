"""An import's result file: one CSV line per row of the camera list (UTF-8 with a BOM, so Excel
shows Chinese correctly), written as rows finish and sorted by row at the end.

Columns: ``row, name, address, status, camera_id, reason, fingerprint``. ``status`` is the
camera's status (``online``, ``offline``, ``auth_failed``, ...) or ``invalid`` / ``refused`` /
``error`` / ``skipped``. Passing the file back with ``--resume`` skips the rows that were done
(``online`` or ``skipped``) and whose content (``fingerprint``) has not changed since. The
fingerprint is an HMAC keyed with the node's secret (``CameraSpec.fingerprint``): it covers the
password, yet whoever holds the file cannot test password guesses against it.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import TextIO

from xueliang.gateway.cameras.errors import ImportFileError
from xueliang.gateway.cameras.export import neutralise, unneutralise
from xueliang.gateway.cameras.models import RowResult

COLUMNS = ("row", "name", "address", "status", "camera_id", "reason", "fingerprint")
FLUSH_EVERY = 200  # rows buffered before a write; a crash loses at most these (resume redoes them)


def _line(result: RowResult) -> list[str]:
    return [
        str(result.row),
        neutralise(result.name),
        neutralise(result.address),
        result.status,
        result.camera_id,
        neutralise(result.reason),
        result.fingerprint,
    ]


def render(results: list[RowResult]) -> str:
    """The whole file's text (without the BOM), rows sorted by row number."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for result in sorted(results, key=lambda r: r.row):
        writer.writerow(_line(result))
    return buffer.getvalue()


class ResultWriter:
    """Appends results as they come (buffered), then rewrites the file sorted (``finish``).

    Blocking file I/O: call ``open``/``flush``/``finish`` from a worker thread (``asyncio.to_thread``);
    ``add`` only buffers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None
        self._pending: list[RowResult] = []

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8-sig", newline="")
        csv.writer(self._file, lineterminator="\r\n").writerow(COLUMNS)
        self._file.flush()

    def add(self, result: RowResult) -> bool:
        """Buffer ``result``; True when the buffer should be flushed now."""
        self._pending.append(result)
        return len(self._pending) >= FLUSH_EVERY

    def take(self) -> list[RowResult]:
        pending, self._pending = self._pending, []
        return pending

    def flush(self, results: list[RowResult]) -> None:
        assert self._file is not None, "open() first"
        csv.writer(self._file, lineterminator="\r\n").writerows(_line(r) for r in results)
        self._file.flush()

    def finish(self, results: list[RowResult]) -> None:
        """Replace the file by the complete, sorted one (atomically)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(render(results), encoding="utf-8-sig", newline="")
        os.replace(temporary, self.path)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_results(path: Path) -> list[RowResult]:
    """Read a result file (ours: BOM, columns above); ``ImportFileError`` if it is not one."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ImportFileError(f"cannot read the result file {path}: {exc.strerror}; check the --resume path") from exc
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{path} is not a result file of an import (not UTF-8 text)") from exc
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not set(COLUMNS) <= set(reader.fieldnames):
        raise ImportFileError(
            f"{path} is not a result file of an import (its columns must be {', '.join(COLUMNS)}); "
            "pass the file the earlier import wrote"
        )
    results = []
    for number, line in enumerate(reader, start=2):
        try:
            row = int(line["row"])
        except (TypeError, ValueError) as exc:
            raise ImportFileError(f"{path}, line {number}: row {line['row']!r} is not a number") from exc
        results.append(
            RowResult(
                row=row,
                name=unneutralise(line["name"] or ""),
                address=unneutralise(line["address"] or ""),
                status=line["status"] or "",
                camera_id=line["camera_id"] or "",
                reason=unneutralise(line["reason"] or ""),
                fingerprint=line["fingerprint"] or "",
            )
        )
    return results
