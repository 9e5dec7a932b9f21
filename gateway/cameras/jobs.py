"""Import jobs started through the API: queued, run one at a time in the background, their
progress and result file kept for download.

The queue is bounded (``cameras.import_queue`` waiting jobs; policy: *refuse newest* with
``ImportQueueFull``, counted in ``refused``). Finished jobs beyond ``cameras.import_jobs_kept``
are forgotten oldest first, their result files deleted. Jobs live in this node's memory: in
scale-out, ask the node that accepted the job (the result files stay on its disk).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from xueliang.gateway.cameras.bulk import BulkImport
from xueliang.gateway.cameras.errors import ImportQueueFull
from xueliang.gateway.cameras.importer import ParsedFile
from xueliang.gateway.cameras.models import ImportProgress
from xueliang.gateway.cameras.service import CameraService
from xueliang.gateway.errors import GatewayError, NotFound

log = logging.getLogger(__name__)


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(slots=True)
class ImportJob:
    id: str
    filename: str
    actor: str
    parsed: ParsedFile | None
    result_path: Path
    state: JobState = JobState.QUEUED
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    progress: ImportProgress | None = None
    error: str = ""
    unknown_columns: list[str] = field(default_factory=list)


class ImportJobs:
    def __init__(self, service: CameraService, directory: Path) -> None:
        self.service = service
        self.directory = directory
        self.kept = service.settings.import_jobs_kept
        self.refused = 0
        self._jobs: OrderedDict[str, ImportJob] = OrderedDict()
        self._queue: asyncio.Queue[ImportJob] = asyncio.Queue(service.settings.import_queue)

    def submit(self, filename: str, parsed: ParsedFile, actor: str) -> ImportJob:
        """Queue an import of an already parsed list; ``ImportQueueFull`` when too many wait."""
        job_id = f"imp-{secrets.token_hex(6)}"
        job = ImportJob(job_id, filename, actor, parsed, self.directory / f"{job_id}.result.csv")
        job.progress = ImportProgress(total=parsed.total)
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.refused += 1
            raise ImportQueueFull(
                f"{self._queue.qsize()} camera imports are waiting already: try again when they have finished"
            ) from None
        self._jobs[job_id] = job
        self._forget_old()
        log.info("import job %s: %s queued by %s (%d rows)", job_id, filename, actor, parsed.total)
        return job

    def get(self, job_id: str) -> ImportJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"import job {job_id} is not known to this node (finished jobs are kept {self.kept})")
        return job

    def list(self) -> list[ImportJob]:
        return list(reversed(self._jobs.values()))

    async def run(self) -> None:
        """The node service: run queued jobs one at a time, until cancelled."""
        while True:
            job = await self._queue.get()
            await self._run(job)

    async def _run(self, job: ImportJob) -> None:
        job.state = JobState.RUNNING
        parsed, job.parsed = job.parsed, None  # the rows are not needed once the import has them

        def progress(current: ImportProgress) -> None:
            job.progress = current

        importer = BulkImport(self.service, actor=job.actor, on_progress=progress)
        try:
            report = await importer.run(Path(job.filename), job.result_path, parsed=parsed)
        except GatewayError as exc:
            job.state, job.error = JobState.FAILED, str(exc)
            log.warning("import job %s failed: %s", job.id, exc)
        else:
            job.state, job.progress, job.unknown_columns = JobState.DONE, report.progress, report.unknown_columns
        job.finished_at = datetime.now(UTC)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state in (JobState.DONE, JobState.FAILED)]
        for job in finished[: max(0, len(finished) - self.kept)]:
            del self._jobs[job.id]
            with contextlib.suppress(FileNotFoundError):
                job.result_path.unlink()
