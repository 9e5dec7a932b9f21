"""The public, read-only case status page: the target of a case's QR code (一案一码).

The one page open without login besides health: it shows a case's progress and nothing personal
(no camera, no picture, no address below the township), from ``events.status.public_view``.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import HTMLResponse

from xueliang.api.deps import NodeDep, get_case_work
from xueliang.events.errors import CaseNotFound
from xueliang.events.models import CaseStatus, PublicCaseView
from xueliang.events.text import GRADE_ZH

router = APIRouter(tags=["public"])

STATUS_ZH = {
    CaseStatus.NEW: "已生成 created",
    CaseStatus.QUEUED: "待发送 queued",
    CaseStatus.SENT: "已报送 sent",
    CaseStatus.RECEIVED: "已受理 received",
    CaseStatus.DISPATCHED: "已转办 dispatched",
    CaseStatus.HANDLING: "办理中 handling",
    CaseStatus.SUPERVISED: "督办中 supervised",
    CaseStatus.CLOSED: "已办结 closed",
    CaseStatus.REJECTED: "不予受理 rejected",
    CaseStatus.DEAD: "报送失败 delivery failed",
}
GRADE_COLOURS = {"red": "#c62828", "orange": "#ef6c00", "blue": "#1565c0"}


async def _view(node: NodeDep, code: str) -> PublicCaseView:
    work = await get_case_work(node)
    try:
        return await work.service.status.public_view(code)
    except CaseNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"没有此案件 / no case {code}") from exc


@router.get("/c/{code}.json", summary="Public status of a case (JSON; no personal data)")
async def public_status_json(code: str, node: NodeDep) -> PublicCaseView:
    return await _view(node, code)


@router.get("/c/{code}", response_class=HTMLResponse, summary="Public status page of a case (QR target)")
async def public_status_page(code: str, node: NodeDep) -> HTMLResponse:
    view = await _view(node, code)
    rows = "".join(
        f"<li><b>{html.escape(STATUS_ZH.get(e.status, str(e.status)))}</b> <time>{e.at:%Y-%m-%d %H:%M}</time></li>"
        for e in view.history
    )
    overdue = '<p class="overdue">已超期 overdue</p>' if view.overdue else ""
    colour = GRADE_COLOURS.get(str(view.grade), "#1565c0")
    page = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>案件 {html.escape(view.code)}</title>
<style>body{{font-family:"Noto Sans CJK SC",sans-serif;max-width:34em;margin:1em auto;padding:0 1em}}
.grade{{padding:.1em .5em;border-radius:.3em;color:#fff;background:{colour}}}
.overdue{{color:#c62828;font-weight:bold}}li{{margin:.3em 0}}</style></head><body>
<h1>案件进度 Case status</h1><p>编号 Code: <b>{html.escape(view.code)}</b></p>
<p><span class="grade">{html.escape(GRADE_ZH.get(view.grade, str(view.grade)))}</span>
{html.escape(view.category_zh)} / {html.escape(view.category_en)}</p>
<p>{html.escape(view.district)} {html.escape(view.township)}</p>
<p>当前状态 Now: <b>{html.escape(STATUS_ZH.get(view.status, str(view.status)))}</b></p>{overdue}
<ol>{rows}</ol></body></html>"""
    return HTMLResponse(page)
