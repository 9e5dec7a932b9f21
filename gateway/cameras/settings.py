"""The camera management settings section (``cameras:`` in ``config/gateway.yaml``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MAX_IMPORT_ROWS = 100_000


class SweepSettings(BaseModel):
    """The health sweep: every camera checked on a schedule (reachability, clock, stream URI)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(True, description="Run the health sweep on this node (one node at a time in scale-out)")
    interval_s: float = Field(
        300.0, gt=0, le=86_400, description="Seconds from the start of one sweep to the start of the next"
    )
    first_delay_s: float = Field(
        30.0, ge=0, le=3600, description="Seconds after the node starts before the first sweep"
    )
    concurrency: int = Field(512, ge=1, le=16_384, description="Cameras checked at once")
    timeout_s: float = Field(
        5.0, gt=0, le=120, description="Limit for one camera's whole check (connect and both SOAP calls), seconds"
    )
    connect_timeout_s: float = Field(3.0, gt=0, le=60, description="Limit for opening the TCP connection, seconds")
    attempts: int = Field(
        1, ge=1, le=3, description="Tries before a camera that cannot be reached is marked offline (within one sweep)"
    )
    last_seen_write_s: float = Field(
        600.0,
        ge=0,
        le=86_400,
        description=(
            "A healthy camera whose status did not change is written back (last_seen) at most this often, "
            "so a sweep of 31,000 healthy cameras does not rewrite 31,000 records; 0 writes every time"
        ),
    )
    clock_change_s: float = Field(
        2.0, ge=0, description="A clock offset that moved by more than this is written back at once, seconds"
    )
    page_size: int = Field(2000, ge=10, le=100_000, description="Cameras read from the registry per page")


class CameraSettings(BaseModel):
    """Provisioning (one camera or thousands), the allowed-network guard and the health sweep."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    probe_timeout_s: float = Field(
        10.0, gt=0, le=300, description="Limit for each SOAP call of a provisioning probe, seconds"
    )
    probe_concurrency: int = Field(
        32, ge=1, le=4096, description="Probes in flight at once for single adds and re-probes (API, sweep)"
    )
    import_concurrency: int = Field(
        128, ge=1, le=4096, description="Rows of a bulk import provisioned at once (`--concurrency` overrides)"
    )
    max_import_bytes: int = Field(
        32 << 20, ge=1024, description="Largest camera list (CSV/XLSX) the API accepts for an import, bytes"
    )
    max_import_rows: int = Field(
        DEFAULT_MAX_IMPORT_ROWS,
        ge=1,
        le=10_000_000,
        description=(
            "Most rows (after the header, empty ones included) a camera list may have; a longer one is refused "
            "before it is read into memory (a 32 MiB XLSX can expand to millions of rows): split it"
        ),
    )
    import_jobs_kept: int = Field(
        20, ge=1, le=1000, description="Finished import jobs (and their result files) the API keeps for download"
    )
    import_queue: int = Field(
        4, ge=1, le=100, description="Import jobs that may wait for the running one; more are refused (HTTP 429)"
    )
    dns_cache_s: float = Field(
        60.0, ge=0, le=86_400, description="How long a resolved camera host name is trusted by the guard, seconds"
    )
    sweep: SweepSettings = Field(default_factory=SweepSettings, description="The periodic health sweep")
