"""The case side's exception tree, drawn once.

::

    EventsError                       base of everything ``xueliang.events`` raises on purpose
    ├── TableError                    a grading, routing or mapping table is wrong (every problem listed)
    │   ├── GradingTableError         config/grading.yaml or config/routing.yaml
    │   └── MappingTableError         config/intake_mapping.yaml
    ├── MappingError                  a case cannot be mapped to the intake's schema (a path is missing)
    ├── IncidentError                 an operator action on an incident is not possible
    │   ├── IncidentNotFound          no live or stored incident has that id
    │   └── InvalidTransition         the incident's state does not allow the action (e.g. dismiss a closed one)
    ├── CaseNotFound                  no case has that code
    ├── EventStoreError               the incident/case store failed (SQLite unwritable, corrupt)
    ├── EvidenceError                 the evidence JPEG cannot be decoded or written
    ├── DeliveryError                 one attempt to hand a case to the intake failed
    │   ├── TransientDeliveryError    worth retrying: timeout, refused connection, 5xx, 408, 429, 401 (clock or
    │   │                             secret), a 2xx that is no receipt
    │   └── PermanentDeliveryError    retrying cannot help: 3xx, 4xx other than 401/408/409/429
    ├── SignatureRejected             a signed request failed verification (bad/missing signature, stale, replayed)
    └── CallbackRejected              a status callback was refused (bad signature, stale, replayed, unknown case)

The gateway maps these to HTTP answers (``CallbackRejected.http_status``) and to its own
``ConfigError`` at start. Every message says what failed, which one, and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass


class EventsError(Exception):
    """Base class of the case side's deliberate errors."""


@dataclass(frozen=True, slots=True)
class TableProblem:
    """One problem in a table: the file, where in it (``rules[3].grade``), and what is wrong."""

    source: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.where}: {self.message}"


class TableError(EventsError):
    """A table is invalid; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[TableProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in the tables; the case service refuses to start:\n{lines}")


class GradingTableError(TableError):
    """config/grading.yaml or config/routing.yaml is invalid."""


class MappingTableError(TableError):
    """config/intake_mapping.yaml is invalid."""


class MappingError(EventsError):
    """A case could not be mapped to the intake's schema."""


class IncidentError(EventsError):
    """An operator action on an incident is not possible."""


class IncidentNotFound(IncidentError):
    """No incident has that id."""


class InvalidTransition(IncidentError):
    """The incident's current state does not allow the action."""


class CaseNotFound(EventsError):
    """No case has that code."""


class EventStoreError(EventsError):
    """The incident/case store failed."""


class EvidenceError(EventsError):
    """The evidence frame could not be decoded, annotated or written."""


class DeliveryError(EventsError):
    """One delivery attempt failed; ``reason`` is short and goes into the outbox item."""

    def __init__(self, reason: str, *, status_code: int | None = None, retry_after_s: float | None = None) -> None:
        self.reason = reason
        self.status_code = status_code
        self.retry_after_s = retry_after_s
        super().__init__(reason)


class TransientDeliveryError(DeliveryError):
    """Worth retrying later (timeout, refused connection, 5xx, 408, 429, 401, a 2xx that is no receipt)."""


class PermanentDeliveryError(DeliveryError):
    """The intake refused the case for good (4xx other than 408/409/429); an operator must look."""


class SignatureRejected(EventsError):
    """A signed request failed verification; ``reason`` says which check."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class CallbackRejected(EventsError):
    """A status callback was refused. ``http_status`` is what the API should answer."""

    def __init__(self, reason: str, http_status: int = 401) -> None:
        self.reason = reason
        self.http_status = http_status
        super().__init__(reason)
