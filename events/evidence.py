"""Evidence: the annotated snapshot of a case, kept on disk under a retention policy.

``annotate`` draws the boxes and labels on the evidence JPEG with OpenCV and re-encodes it (CPU
work: ``EvidenceStore.save`` runs it in a bounded thread pool, never on the event loop). Files live
at ``<dir>/YYYY/MM/DD/<code>.jpg`` (local date of the observation) and are indexed in the event
store with their sha256. ``prune`` deletes the oldest first, past ``max_age_days`` or while the
total exceeds ``max_total_bytes``, and never the evidence of a case not yet closed and delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import cv2
import numpy as np

from xueliang.events.codes import to_local
from xueliang.events.errors import EvidenceError
from xueliang.events.models import EvidenceRef
from xueliang.events.settings import EvidenceSettings
from xueliang.events.store import EvidenceRow
from xueliang.inference.anomaly import Evidence

log = logging.getLogger(__name__)
BOX_COLOUR = (0, 0, 255)  # BGR red
LABEL_TEXT = (255, 255, 255)


def annotate(evidence: Evidence, quality: int = 90) -> bytes:
    """The evidence JPEG with its boxes and labels drawn; raises ``EvidenceError`` if it does not decode."""
    return _annotate(evidence, quality)[0]


def _annotate(evidence: Evidence, quality: int) -> tuple[bytes, int, int]:
    """``annotate``, and the image's width and height (known from the decode)."""
    raw = np.frombuffer(evidence.jpeg, dtype=np.uint8)
    image = cv2.imdecode(raw, cv2.IMREAD_COLOR) if raw.size else None
    if image is None:
        raise EvidenceError(f"evidence frame does not decode as an image ({len(evidence.jpeg)} bytes)")
    height, width = image.shape[:2]
    thickness = max(2, round(min(width, height) / 240))
    for box in evidence.boxes:
        x1, y1 = max(0, int(box.x1)), max(0, int(box.y1))
        x2, y2 = min(width - 1, int(box.x2)), min(height - 1, int(box.y2))
        cv2.rectangle(image, (x1, y1), (x2, y2), BOX_COLOUR, thickness)
        # cv2's Hershey fonts are ASCII only; labels are model class names (person, car).
        label = f"{box.label.encode('ascii', 'replace').decode()} {box.score:.2f}"
        if box.track_id is not None:
            label += f" #{box.track_id}"
        scale = max(0.4, thickness / 4)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(0, y1 - th - base - 2)
        cv2.rectangle(image, (x1, top), (min(width - 1, x1 + tw + 2), top + th + base + 2), BOX_COLOUR, -1)
        cv2.putText(image, label, (x1 + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, LABEL_TEXT, 1, cv2.LINE_AA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise EvidenceError("JPEG encoding of the annotated evidence failed")
    return bytes(encoded.tobytes()), width, height


@dataclass(frozen=True, slots=True)
class PruneReport:
    deleted: list[str]  # case codes
    kept_protected: int
    freed_bytes: int
    total_bytes: int


class EvidenceStore:
    """Writes annotated evidence under the evidence directory and applies retention."""

    def __init__(self, settings: EvidenceSettings, *, timezone: str = "Asia/Shanghai", public_url: str = "") -> None:
        self.settings = settings
        self.root = settings.dir
        self._zone = ZoneInfo(timezone)
        self._public_url = public_url.rstrip("/")
        self._executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="events-evidence")

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def relative_path(self, code: str, observed_at: datetime) -> str:
        return to_local(observed_at, self._zone).strftime("%Y/%m/%d/") + f"{code}.jpg"

    def _write(self, code: str, observed_at: datetime, evidence: Evidence) -> EvidenceRef:
        data, decoded_width, decoded_height = _annotate(evidence, self.settings.jpeg_quality)
        relative = self.relative_path(code, observed_at)
        target = self.root / relative
        temporary = target.with_suffix(".tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with temporary.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(target)
        except OSError as exc:
            # A partial file (disk full) is indexed nowhere: retention would never free it.
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            raise EvidenceError(
                f"case {code}: cannot write evidence {target}: {exc.strerror}; "
                "free space or fix the rights under events.evidence.dir"
            ) from exc
        height, width = evidence.height, evidence.width
        if not (height and width):
            height, width = decoded_height, decoded_width
        url = f"{self._public_url}/evidence/{code}.jpg" if self._public_url else ""
        digest = hashlib.sha256(data).hexdigest()
        return EvidenceRef(sha256=digest, path=relative, url=url, width=width, height=height, bytes=len(data))

    async def save(self, code: str, observed_at: datetime, evidence: Evidence) -> EvidenceRef:
        """Annotate, encode, write (in the pool); raises ``EvidenceError``."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._write, code, observed_at, evidence)

    def _prune(self, rows: list[EvidenceRow], protected: Collection[str], now: datetime) -> PruneReport:
        total = sum(row.bytes for row in rows)
        oldest_allowed = now - timedelta(days=self.settings.max_age_days)
        deleted: list[str] = []
        freed = 0
        kept = 0
        for row in sorted(rows, key=lambda r: r.created_at):
            too_old = row.created_at < oldest_allowed
            too_big = total - freed > self.settings.max_total_bytes
            if not (too_old or too_big):
                continue
            if row.code in protected:
                kept += 1
                continue
            try:
                (self.root / row.path).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("case %s: cannot delete evidence %s: %s", row.code, row.path, exc.strerror)
                continue
            deleted.append(row.code)
            freed += row.bytes
        return PruneReport(deleted=deleted, kept_protected=kept, freed_bytes=freed, total_bytes=total - freed)

    async def prune(
        self,
        rows: list[EvidenceRow],
        protected: Collection[str],
        now: datetime,
    ) -> PruneReport:
        """Apply retention to the indexed ``rows`` (file deletion in the pool)."""
        loop = asyncio.get_running_loop()
        report = await loop.run_in_executor(self._executor, self._prune, rows, frozenset(protected), now)
        for code in report.deleted:
            log.info("case %s: evidence deleted by retention", code)
        return report
