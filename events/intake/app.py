"""The reference intake's FastAPI app: ``create_app(settings)``; no import-time state.

- ``POST /api/v1/cases``: signed (X-Xueliang-* headers), ``Idempotency-Key`` equal to ``caseNo``;
  201 with a receipt; a repeated code answers ``duplicate_status`` (409 by default) with the SAME
  receipt and never stores a second case; 401 bad signature; 422 a body outside the contract.
- ``GET /api/v1/cases/{code}``: signed; status and history.
- ``GET /api/v1/stats``: counts (received, duplicates refused, ...).
- ``GET|POST /_control``: misbehaviour on demand (``Chaos``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from xueliang.events.errors import SignatureRejected
from xueliang.events.intake.progress import Progress
from xueliang.events.intake.schema import CaseStatusView, Chaos, IntakeCase, Receipt, Stats
from xueliang.events.intake.settings import IntakeSettings
from xueliang.events.intake.store import IntakeStore
from xueliang.events.signing import verify

MAX_HANG_S = 300.0
_OPEN_PATHS = ("/_control", "/api/v1/stats", "/openapi.json", "/docs")
_COUNTERS = ("duplicates_refused", "requests", "bad_signatures", "invalid", "errors_injected")
_CALLBACK_COUNTERS = ("callbacks_sent", "callbacks_failed")


class Intake:
    """The handlers and their state, built per app."""

    def __init__(self, settings: IntakeSettings) -> None:
        self.settings = settings
        self.store = IntakeStore(settings.db)
        self.progress = Progress(settings, self.store)
        self.chaos = Chaos()
        self._dice = random.Random(settings.seed)
        self._secrets = {settings.key_id: settings.secret.get_secret_value()}

    @contextlib.asynccontextmanager
    async def lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        await self.store.open()
        task = asyncio.create_task(self.progress.run(), name="intake-progress")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.wait([task])
            await self.store.close()

    async def misbehave(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if self.chaos.down and not request.url.path.startswith(_OPEN_PATHS):
            return JSONResponse({"detail": "intake down (control)"}, status_code=503)
        return await call_next(request)

    async def check_signature(self, request: Request, body: bytes) -> None:
        try:
            verify(
                request.headers, request.method, request.url.path, body, self._secrets, window_s=self.settings.window_s
            )
        except SignatureRejected as exc:
            await self.store.count("bad_signatures")
            raise HTTPException(status_code=401, detail=exc.reason) from exc

    @staticmethod
    async def hang(request: Request) -> None:
        """Answer nothing until the client gives up (or ``MAX_HANG_S``)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(MAX_HANG_S):
                while (await request.receive())["type"] != "http.disconnect":
                    continue

    async def post_case(self, request: Request) -> Response:
        await self.store.count("requests")
        chaos = self.chaos
        if chaos.timeout:
            await self.hang(request)
            return Response(status_code=504)
        if chaos.latency_ms:
            await asyncio.sleep(chaos.latency_ms / 1000)
        body = await request.body()
        await self.check_signature(request, body)
        inject = chaos.error_rate > 0 and self._dice.random() < chaos.error_rate
        if inject and not chaos.error_after_commit:
            await self.store.count("errors_injected")
            return JSONResponse({"detail": "injected error (control)"}, status_code=chaos.error_status)
        try:
            case = IntakeCase.model_validate(json.loads(body))
        except (ValueError, ValidationError) as exc:
            await self.store.count("invalid")
            detail = exc.errors(include_url=False) if isinstance(exc, ValidationError) else str(exc)
            return JSONResponse({"detail": detail}, status_code=422)
        if request.headers.get("Idempotency-Key") != case.caseNo:
            await self.store.count("invalid")
            return JSONResponse({"detail": "Idempotency-Key must equal caseNo"}, status_code=422)
        receipt, new = await self.store.receive(case.caseNo, case.model_dump(mode="json"), self.settings.step_s)
        if inject:
            await self.store.count("errors_injected")
            return JSONResponse({"detail": "injected error after commit (control)"}, status_code=chaos.error_status)
        return JSONResponse(receipt.model_dump(mode="json"), status_code=201 if new else self.settings.duplicate_status)

    async def get_case(self, code: str, request: Request) -> CaseStatusView:
        await self.check_signature(request, await request.body())
        view = await self.store.status(code)
        if view is None:
            raise HTTPException(status_code=404, detail=f"no case {code}")
        return view

    async def stats(self) -> Stats:
        counters, by_status = await self.store.counters()
        counts = {name: counters.get(name, 0) for name in _COUNTERS + _CALLBACK_COUNTERS}
        return Stats(received=counters["received"], by_status=by_status, **counts)

    async def get_control(self) -> Chaos:
        return self.chaos

    async def set_control(self, change: Chaos) -> Chaos:
        self.chaos = change
        return change


def create_app(settings: IntakeSettings) -> FastAPI:
    intake = Intake(settings)
    app = FastAPI(
        title="Reference intake (综治中心受理接口参考实现)",
        version="1.0",
        description="Stand-in for the governance centre's case intake API; for tests and demos.",
        lifespan=intake.lifespan,
    )
    app.middleware("http")(intake.misbehave)
    body_schema = {"$ref": "#/components/schemas/IntakeCase"}
    app.post(
        "/api/v1/cases",
        status_code=201,
        response_model=Receipt,
        responses={401: {"description": "bad signature"}, 409: {"model": Receipt, "description": "already received"}},
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": body_schema}}}},
    )(intake.post_case)
    app.get("/api/v1/cases/{code}", response_model=CaseStatusView, responses={401: {}, 404: {}})(intake.get_case)
    app.get("/api/v1/stats", response_model=Stats)(intake.stats)
    app.get("/_control", response_model=Chaos)(intake.get_control)
    app.post("/_control", response_model=Chaos)(intake.set_control)
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        schema = default_openapi()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        case_schema = IntakeCase.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(case_schema.pop("$defs", {}))
        components["IntakeCase"] = case_schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
