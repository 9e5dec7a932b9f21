"""Bulk import: a camera list (CSV/XLSX) provisioned ``concurrency`` rows at a time.

- idempotent: provisioning is by address, so running the same list again updates, never duplicates;
- resumable: every row's outcome goes to a result file (:mod:`xueliang.gateway.cameras.results`);
  ``resume`` with that file skips the rows that were done and have not changed since (a row's
  fingerprint is keyed with the node's secret, so the file reveals nothing about passwords);
- one bad row never stops the others: a row that cannot be read is ``invalid`` (with the
  parser's problem text), an address outside the allowed networks is ``refused``, a store
  conflict is ``error``; every other row goes on.
- progress: ``on_progress(ImportProgress)`` after every row (done/total/ok/failed, rate, ETA).

The file is parsed and the result file written in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from xueliang.gateway.cameras.errors import CameraAddressError
from xueliang.gateway.cameras.importer import CameraRow, ParsedFile, RowProblem, parse_camera_file
from xueliang.gateway.cameras.models import ImportProgress, RowResult, RowState
from xueliang.gateway.cameras.results import ResultWriter, read_results
from xueliang.gateway.cameras.service import CameraService
from xueliang.gateway.errors import GatewayError

log = logging.getLogger(__name__)

ProgressCallback = Callable[[ImportProgress], None]


@dataclass(slots=True)
class ImportReport:
    progress: ImportProgress
    results: list[RowResult]
    result_path: Path
    unknown_columns: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[RowResult]:
        return [r for r in self.results if not r.ok]


def default_result_path(source: Path) -> Path:
    return source.with_name(f"{source.stem}.result.csv")


def _problems_by_row(problems: list[RowProblem]) -> dict[int, list[str]]:
    rows: dict[int, list[str]] = {}
    for problem in problems:
        rows.setdefault(problem.row, []).append(f"{problem.column}: {problem.message}")
    return rows


class BulkImport:
    def __init__(
        self,
        service: CameraService,
        *,
        actor: str,
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.service = service
        self.actor = actor
        self.concurrency = concurrency or service.settings.import_concurrency
        self.on_progress = on_progress

    async def run(
        self,
        source: Path,
        result_path: Path | None = None,
        *,
        resume: Path | None = None,
        parsed: ParsedFile | None = None,
    ) -> ImportReport:
        """Import ``source`` (already ``parsed``, or parsed now). Raises ``ImportFileError`` only for the
        file as a whole (or an unreadable ``resume`` file)."""
        if parsed is None:
            limit = self.service.settings.max_import_rows
            parsed = await asyncio.to_thread(parse_camera_file, source, max_rows=limit)
        result_path = result_path or default_result_path(source)
        key = self.service.node.import_key
        done_before = await self._done_before(resume)
        progress = ImportProgress(total=parsed.total)
        results: list[RowResult] = []
        writer = ResultWriter(result_path)
        await asyncio.to_thread(writer.open)

        async def record(result: RowResult) -> None:
            results.append(result)
            progress.count(result)
            if self.on_progress is not None:
                self.on_progress(progress)
            if writer.add(result):
                await asyncio.to_thread(writer.flush, writer.take())

        try:
            todo = await self._settle_without_probing(parsed, done_before, record, key)
            rows: Iterator[tuple[CameraRow, str]] = iter(todo)

            async def worker() -> None:
                for row, fingerprint in rows:  # one shared iterator: each row is taken by exactly one worker
                    await record(await self._one(row, fingerprint))

            async with asyncio.TaskGroup() as group:
                for index in range(min(self.concurrency, len(todo))):
                    group.create_task(worker(), name=f"import-worker-{index}")
            progress.finished = progress.started + progress.elapsed_s
            await asyncio.to_thread(writer.finish, results)
        except BaseException:
            writer.flush(writer.take())  # interrupted: keep what was done, so a resume skips it
            raise
        finally:
            writer.close()
        if self.on_progress is not None:
            self.on_progress(progress)
        await self._audit(source, progress)
        return ImportReport(progress, sorted(results, key=lambda r: r.row), result_path, parsed.unknown_columns)

    async def _done_before(self, resume: Path | None) -> dict[str, RowResult]:
        if resume is None:
            return {}
        previous = await asyncio.to_thread(read_results, resume)
        return {r.fingerprint: r for r in previous if r.ok and r.fingerprint}

    async def _settle_without_probing(
        self,
        parsed: ParsedFile,
        done_before: dict[str, RowResult],
        record: Callable[[RowResult], Awaitable[None]],
        key: bytes,
    ) -> list[tuple[CameraRow, str]]:
        """Record invalid, duplicate and resumed rows; return the rows left to provision, with their
        fingerprints."""
        for number, texts in sorted(_problems_by_row(parsed.problems).items()):
            name, address = parsed.invalid.get(number, ("", ""))
            await record(RowResult(number, name, address, RowState.INVALID, reason="; ".join(texts)))
        todo: list[tuple[CameraRow, str]] = []
        first_row: dict[str, int] = {}
        for row in parsed.rows:
            earlier = first_row.setdefault(row.address, row.row)
            if earlier != row.row:
                reason = f"与第 {earlier} 行地址重复 / same address as row {earlier}: one camera per address"
                await record(RowResult(row.row, row.name, row.address, RowState.INVALID, reason=reason))
                continue
            fingerprint = row.fingerprint(key)
            if fingerprint in done_before:
                reason = "上次导入已完成 / done in the earlier run and unchanged (resumed)"
                camera_id = done_before[fingerprint].camera_id
                result = RowResult(row.row, row.name, row.address, RowState.SKIPPED, camera_id, reason, fingerprint)
                await record(result)
            else:
                todo.append((row, fingerprint))
        return todo

    async def _one(self, row: CameraRow, fingerprint: str) -> RowResult:
        try:
            provisioned = await self.service.provision(row, self.actor, bounded=False, audit=False)
        except CameraAddressError as exc:
            return RowResult(row.row, row.name, row.address, RowState.REFUSED, "", str(exc), fingerprint)
        except GatewayError as exc:
            log.warning("import row %d (%s): %s", row.row, row.address, exc)
            return RowResult(row.row, row.name, row.address, RowState.ERROR, "", str(exc), fingerprint)
        except Exception as exc:  # a bug must not stop the other rows; it is logged with its traceback
            log.exception("import row %d (%s): internal error", row.row, row.address)
            reason = f"internal error ({type(exc).__name__}: {exc}); see the gateway log"
            return RowResult(row.row, row.name, row.address, RowState.ERROR, "", reason, fingerprint)
        record = provisioned.record
        return RowResult(
            row.row, row.name, row.address, record.status.value, record.id, provisioned.reason, fingerprint
        )

    async def _audit(self, source: Path, progress: ImportProgress) -> None:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(progress.by_status.items()))
        await self.service.node.audit(self.actor, "cameras.import", "ok", target=source.name, detail=counts)
        log.info("import of %s: %d rows in %.1f s: %s", source.name, progress.done, progress.elapsed_s, counts)
