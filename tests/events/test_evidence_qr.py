"""Evidence annotation (pixels, sha256, retention) and the case QR code (decoded by zbarimg when present)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import segno

from xueliang.events.errors import EvidenceError
from xueliang.events.evidence import EvidenceStore, annotate
from xueliang.events.qr import case_qr
from xueliang.events.settings import EvidenceSettings
from xueliang.events.store import EvidenceRow
from xueliang.inference.anomaly import Box, Evidence

from .conftest import jpeg

CODE = "511902-20250301-N01-000042"


def test_annotate_draws_boxes() -> None:
    evidence = Evidence(jpeg=jpeg(160, 120, level=90), width=160, height=120,
                        boxes=(Box(x1=40, y1=40, x2=120, y2=100, label="person", score=0.87, track_id=3),))  # fmt: skip
    image = cv2.imdecode(np.frombuffer(annotate(evidence), np.uint8), cv2.IMREAD_COLOR)
    b, g, r = (int(v) for v in image[70, 40])  # on the left edge of the box
    assert r > 180 and g < 80 and b < 80
    b, g, r = (int(v) for v in image[70, 80])  # inside: untouched grey
    assert abs(r - 90) < 12 and abs(g - 90) < 12
    b, g, r = (int(v) for v in image[5, 5])  # outside
    assert abs(r - 90) < 12
    with pytest.raises(EvidenceError, match="does not decode"):
        annotate(Evidence(jpeg=b"not a jpeg"))


async def test_store_writes_by_date_with_sha256_and_retention(tmp_path: Path) -> None:
    store = EvidenceStore(
        EvidenceSettings(dir=tmp_path, max_age_days=30, max_total_bytes=10**9), public_url="https://gw"
    )
    at = datetime(2025, 3, 1, 20, 0, tzinfo=UTC)  # 04:00 on 2 March in Shanghai
    evidence = Evidence(jpeg=jpeg(), boxes=(Box(x1=1, y1=1, x2=50, y2=50, label="car", score=0.5),))
    ref = await store.save(CODE, at, evidence)
    path = tmp_path / ref.path
    assert ref.path == f"2025/03/02/{CODE}.jpg" and ref.url == f"https://gw/evidence/{CODE}.jpg"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ref.sha256 and ref.bytes == path.stat().st_size
    assert (ref.width, ref.height) == (160, 120)

    now = at + timedelta(days=40)
    rows = [EvidenceRow(CODE, ref.path, ref.sha256, ref.bytes, at)]
    kept = await store.prune(rows, protected={CODE}, now=now)  # too old, but its case is still open
    assert kept.deleted == [] and kept.kept_protected == 1 and path.exists()
    gone = await store.prune(rows, protected=set(), now=now)
    assert gone.deleted == [CODE] and not path.exists()

    small = EvidenceStore(EvidenceSettings(dir=tmp_path, max_total_bytes=1))
    refs = [await small.save(f"{CODE[:-1]}{i}", at + timedelta(minutes=i), evidence) for i in range(3)]
    rows = [
        EvidenceRow(f"{CODE[:-1]}{i}", r.path, r.sha256, r.bytes, at + timedelta(minutes=i)) for i, r in enumerate(refs)
    ]
    report = await small.prune(rows, protected={f"{CODE[:-1]}0"}, now=at)
    assert report.deleted == [f"{CODE[:-1]}1", f"{CODE[:-1]}2"]  # oldest first, the open case kept
    store.close()
    small.close()


def test_qr_code_svg_and_png_carry_the_status_url(tmp_path: Path) -> None:
    qr = case_qr("https://gw.example.gov.cn/", CODE)
    assert qr.url == f"https://gw.example.gov.cn/c/{CODE}"
    assert qr.svg.startswith(b"<?xml") and b"<svg" in qr.svg and CODE.encode() in qr.svg  # title
    assert qr.png.startswith(b"\x89PNG")
    image = cv2.imdecode(np.frombuffer(qr.png, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None and image.shape[0] == image.shape[1]
    # The symbol matches segno's encoding of the URL, module for module.
    expected = segno.make(qr.url, error="m", micro=False)
    modules = image[4 * 6 :: 6, 4 * 6 :: 6][: len(expected.matrix), : len(expected.matrix)]
    assert ((modules < 128).astype(int).tolist()) == [list(row) for row in expected.matrix]
    zbarimg = shutil.which("zbarimg")
    if zbarimg is not None:  # Debian zbar-tools: decode like a phone would
        png = tmp_path / "qr.png"
        png.write_bytes(qr.png)
        decoded = subprocess.run([zbarimg, "--quiet", "--raw", str(png)], capture_output=True, check=True, text=True)
        assert decoded.stdout.strip() == qr.url
