"""The ONVIF connector's settings section (``onvif:`` in ``config/gateway.yaml``)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from xueliang.connectors.onvif.tls import load_ca_bundle


class DiscoverySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    timeout_s: float = Field(
        2.0, gt=0, le=60, description="How long to wait for ProbeMatches, per address or multicast"
    )
    concurrency: int = Field(256, ge=1, le=65_536, description="Unicast probes in flight at once")
    max_addresses: int = Field(
        65_536, ge=1, le=1 << 24, description="Largest address list or CIDR range one scan accepts (a /16)"
    )


class OnvifSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    timeout_s: float = Field(10.0, gt=0, le=300, description="Whole-request limit for one SOAP call, seconds")
    connect_timeout_s: float = Field(5.0, gt=0, le=120, description="Limit for opening the TCP connection, seconds")
    max_clock_skew_s: float = Field(
        5.0,
        ge=0,
        description=(
            "Clock difference above which a refused login is reported as ClockSkew (fix the camera's NTP) "
            "instead of a wrong password"
        ),
    )
    rewrite_addresses: bool = Field(
        True,
        description=(
            "When a camera advertises service, snapshot or stream addresses on another host than the one we "
            "reached it on (NAT, a changed IP), use the host we reached"
        ),
    )
    verify_tls: bool = Field(
        True,
        description=(
            "Verify the TLS certificate of cameras reached over HTTPS. Many cameras have self-signed "
            "certificates: trust them (or the site CA that signed them) with ca_bundle; false turns "
            "verification off, an explicit opt-out for trusted networks only"
        ),
    )
    ca_bundle: Path | None = Field(
        None,
        description=(
            "PEM file of the site CA (or of the cameras' self-signed certificates) to trust, in addition "
            "to the system's CAs; null: the system's CAs only"
        ),
    )
    pool_size: int = Field(
        512, ge=1, le=65_536, description="Connections the shared HTTP session may hold open at once"
    )
    keepalive_s: float = Field(
        3.0, ge=0, le=300, description="How long an idle connection to a camera is kept for reuse, seconds"
    )
    parse_in_executor_bytes: int = Field(
        1 << 20,
        ge=0,
        description="Answers larger than this are parsed in a worker thread instead of on the event loop",
    )
    max_answer_bytes: int = Field(
        16 << 20,
        ge=1 << 16,
        le=1 << 30,
        description="Largest SOAP answer accepted from a camera, bytes; a larger one is refused unread",
    )
    subscription_s: int = Field(60, ge=10, le=86_400, description="PullPoint subscription lifetime asked for, seconds")
    pull_timeout_s: int = Field(20, ge=1, le=600, description="How long one PullMessages may wait for events, seconds")
    pull_message_limit: int = Field(100, ge=1, le=10_000, description="Most events one PullMessages returns")
    empty_pull_pause_s: float = Field(
        1.0,
        ge=0,
        le=60,
        description="Pause after a PullMessages that returned at once with nothing (cameras that ignore Timeout)",
    )
    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings, description="WS-Discovery scans")

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle_loads(cls, value: Path | None) -> Path | None:
        if value is not None:
            load_ca_bundle(ssl.create_default_context(), value)  # ValueError names the file and the problem
        return value

    @model_validator(mode="after")
    def _one_tls_choice(self) -> Self:
        if not self.verify_tls and self.ca_bundle is not None:
            raise ValueError("onvif.ca_bundle has no effect with onvif.verify_tls: false; remove one of them")
        return self
