"""QR codes for a case's public status page (一案一码): ``{public_url}/c/{code}``, as SVG and PNG (segno)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import segno


@dataclass(frozen=True, slots=True)
class CaseQr:
    url: str
    svg: bytes
    png: bytes


def status_url(public_url: str, code: str) -> str:
    """The public status page of a case; relative (``/c/<code>``) when no public URL is configured."""
    return f"{public_url.rstrip('/')}/c/{code}"


def case_qr(public_url: str, code: str, *, scale: int = 6, border: int = 4) -> CaseQr:
    """Both images of the case's QR code (error correction M: survives a smudged receipt)."""
    url = status_url(public_url, code)
    qr = segno.make(url, error="m", micro=False)
    svg = io.BytesIO()
    qr.save(svg, kind="svg", scale=scale, border=border, xmldecl=True, title=f"Case {code}")
    png = io.BytesIO()
    qr.save(png, kind="png", scale=scale, border=border)
    return CaseQr(url=url, svg=svg.getvalue(), png=png.getvalue())
