"""The gateway's one settings model: its sections, their fields, defaults and validators.

Every section forbids unknown keys, so a typo is an error with its key path, not a silently
ignored setting. How the settings are read (the shipped defaults, a user file, the environment) and
how problems are reported is ``xueliang.gateway.settings_loading``.

Secrets (``security.*``) are refused while they hold a placeholder, unless ``environment`` is
``development``; validation without that context (``validating_for``) assumes production.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import enum
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from xueliang.connectors.onvif.settings import OnvifSettings
from xueliang.events.settings import EventsSettings
from xueliang.gateway.cameras.settings import CameraSettings
from xueliang.gateway.wall_settings import WallSettings
from xueliang.inference.patrol.settings import AnalyticsSettings
from xueliang.inference.settings import DetectorSettings, SourceSettings

ENV_PREFIX = "XUELIANG_"
DEFAULT_NODE_TAG = "N01"
PLACEHOLDERS = frozenset({"", "change-me", "changeme", "secret", "please-change", "xxx"})


def is_placeholder(secret: str | SecretStr) -> bool:
    """Whether a secret is one of the shipped stand-ins (blank, "change-me", ...), not a real one."""
    text = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return text.strip().lower() in PLACEHOLDERS


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


# The environment the settings being validated are for. A context variable rather than pydantic's
# validation context, which BaseSettings does not hand down to nested sections.
_VALIDATING_FOR: contextvars.ContextVar[str] = contextvars.ContextVar("environment", default="production")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)


class NodeSettings(Section):
    mode: Literal["embedded", "scaleout"] = Field(
        "embedded", description="embedded: one process on SQLite; scaleout: N nodes on Redis"
    )
    name: str = Field("", description="This node's name in scale-out (default: the host name)")
    data_dir: Path = Field(Path("var"), description="Where SQLite files, evidence and dev secrets live")


class HttpSettings(Section):
    host: str = Field("127.0.0.1", description="Address the API listens on")
    port: int = Field(8080, ge=1, le=65535, description="Port the API listens on")
    public_url: str = Field("", description="URL people reach the gateway at (QR codes, links)")

    @property
    def base_url(self) -> str:
        """``public_url``, else the address the API listens on (loopback for a wildcard bind)."""
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return self.public_url or f"http://{shown}:{self.port}"


class SecuritySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    secret_key: SecretStr = Field(SecretStr("change-me"), description="Signs login tokens; 32+ random characters")
    camera_key: SecretStr = Field(
        SecretStr("change-me"),
        description="Fernet key (urlsafe base64, 32 bytes) encrypting camera passwords at rest",
    )
    token_ttl_s: int = Field(8 * 3600, ge=60, description="Lifetime of a login token, seconds")
    allowed_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(
        default_factory=lambda: [ipaddress.ip_network("127.0.0.0/8")],
        description="The only networks the gateway connects to (cameras, intake); CIDR list",
    )
    bootstrap_admin: str = Field("admin", description="Admin user created on first start if none exists")
    login_max_failures: int = Field(5, ge=1, description="Failed logins (per user name or address) before a lockout")
    login_window_s: float = Field(300.0, gt=0, description="Failures older than this are forgotten")
    login_lockout_s: float = Field(
        60.0, gt=0, description="First lockout after too many failures; doubles on each repeat, up to 15 min"
    )

    @model_validator(mode="before")
    @classmethod
    def _secrets_always_checked(cls, data: Any) -> Any:
        # Defaults are not validated with the caller's context, so give missing secrets explicitly.
        if isinstance(data, dict):
            data = {"secret_key": "change-me", "camera_key": "change-me", **data}
        return data

    @field_validator("secret_key", "camera_key")
    @classmethod
    def _no_placeholder(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        environment = _VALIDATING_FOR.get()
        if is_placeholder(value) and environment != Environment.DEVELOPMENT:
            raise ValueError(
                f"placeholder secret refused in {environment} mode; set "
                f"{ENV_PREFIX}SECURITY__{str(info.field_name).upper()} (or environment: development)"
            )
        if info.field_name == "camera_key" and environment != Environment.DEVELOPMENT and not _is_fernet_key(value):
            raise ValueError("camera_key must be a Fernet key (urlsafe base64 of 32 bytes): `xueliang config gen-key`")
        short = len(value.get_secret_value()) < 32
        if info.field_name == "secret_key" and environment != Environment.DEVELOPMENT and short:
            raise ValueError("secret_key must be at least 32 characters")
        return value


def _is_fernet_key(value: SecretStr) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.get_secret_value().encode())) == 32
    except (ValueError, binascii.Error):
        return False


class StorageSettings(Section):
    sqlite_path: Path = Field(Path("gateway.sqlite3"), description="SQLite file, relative to node.data_dir")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL (scale-out mode)")
    redis_prefix: str = Field("xl:", description="Prefix of every Redis key this gateway writes")
    job_queue_capacity: int = Field(10_000, ge=1, description="Bound of the patrol job queue")
    job_visibility_s: float = Field(60.0, gt=0, description="A taken job not acknowledged by then is redelivered")
    bus_maxlen: int = Field(
        100_000,
        ge=100,
        description="Per bus topic: without consumer groups, oldest trimmed; with groups, at most this many "
        "unconsumed, then publish is refused (BusFull) and the publisher retries",
    )


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Root log level")
    json_format: bool = Field(False, description="One JSON object per line instead of text")


class DemoSettings(Section):
    enabled: bool = Field(False, description="Start the camera simulator and reference intake and provision them")
    cameras: int = Field(36, ge=1, le=50_000, description="Simulated cameras, spread over two districts")
    video: Path = Field(Path("../shared/data/vtest.avi"), description="Footage the simulated cameras show")
    intake: bool = Field(
        True,
        description="Run the reference intake in-process on 127.0.0.1 and point the forwarder at it; "
        "false: cases go to events.forwarder.intake_url",
    )
    intake_port: int = Field(0, ge=0, le=65535, description="Port of the demo intake; 0: a free port at each start")
    intake_step_s: float = Field(
        5.0, gt=0, description="Seconds between the demo intake's status steps (received .. closed)"
    )
    watch_cameras: int = Field(
        1, ge=0, le=4, description="Streaming demo cameras watched continuously (live boxes, alarms in seconds)"
    )

    @model_validator(mode="after")
    def _video_exists(self) -> DemoSettings:
        if self.enabled and not self.video.is_file():
            raise ValueError(f"video: no such file: {self.video} (relative to {Path.cwd()}); give the demo footage")
        return self


class Settings(BaseSettings):
    """Everything configurable, one nested model per section."""

    model_config = SettingsConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        validate_default=True,
    )

    environment: Environment = Field(
        Environment.PRODUCTION, description="development accepts placeholder secrets; production refuses them"
    )
    node: NodeSettings = Field(default_factory=NodeSettings, description="This node")
    http: HttpSettings = Field(default_factory=HttpSettings, description="The HTTP API")
    security: SecuritySettings = Field(
        default_factory=SecuritySettings,
        description="Auth and secrets",
    )
    storage: StorageSettings = Field(default_factory=StorageSettings, description="Stores, queue, bus")
    logging: LoggingSettings = Field(default_factory=LoggingSettings, description="Logging")
    demo: DemoSettings = Field(default_factory=DemoSettings, description="The demo started by `make run`")
    cameras: CameraSettings = Field(
        default_factory=CameraSettings, description="Camera provisioning, bulk import, network guard, health sweep"
    )
    onvif: OnvifSettings = Field(default_factory=OnvifSettings, description="The ONVIF device client")
    detector: DetectorSettings = Field(
        default_factory=DetectorSettings, description="The ONNX detector: model, execution providers, batching"
    )
    sources: SourceSettings = Field(
        default_factory=SourceSettings, description="Frame sources: ONVIF snapshots, RTSP streams, files"
    )
    analytics: AnalyticsSettings = Field(
        default_factory=AnalyticsSettings,
        description="Patrol scheduler, workers, watch mode, quality diagnosis and rules",
    )
    wall: WallSettings = Field(
        default_factory=WallSettings, description="The live wall: WebRTC ICE servers, the relay, sessions"
    )
    events: EventsSettings = Field(
        default_factory=EventsSettings, description="Incidents, grading, cases and delivery to the intake"
    )

    @field_validator("events")
    @classmethod
    def _intake_secrets(cls, value: EventsSettings) -> EventsSettings:
        environment = _VALIDATING_FOR.get()
        if environment == Environment.DEVELOPMENT:
            return value
        refused = [
            f"{key}: placeholder secret refused in {environment} mode; "
            f"set {ENV_PREFIX}EVENTS__{key.replace('.', '__').upper()}"
            for key, secret in (
                ("forwarder.secret", value.forwarder.secret),
                ("callback.secret", value.callback.secret),
            )
            if is_placeholder(secret)
        ]
        if refused:  # both at once, one a line: a technician fixes them in one go
            raise ValueError("\n".join(refused))
        return value

    @model_validator(mode="after")
    def _unique_case_codes(self) -> Settings:
        # Case codes carry the node tag; in scale-out a node taking over the case side must not draw
        # codes another node already used.
        if self.node.mode == "scaleout" and self.events.codes.node_tag == DEFAULT_NODE_TAG:
            raise ValueError(
                f"events.codes.node_tag: the default {DEFAULT_NODE_TAG!r} is refused in scale-out mode; give each "
                "node its own tag (XUELIANG_EVENTS__CODES__NODE_TAG=G01, G02, ...)"
            )
        return self

    @property
    def sqlite_file(self) -> Path:
        return self.node.data_dir / self.storage.sqlite_path


@contextlib.contextmanager
def validating_for(environment: str) -> Iterator[None]:
    """Validate settings built inside this block for ``environment`` (placeholder secrets)."""
    token = _VALIDATING_FOR.set(environment)
    try:
        yield
    finally:
        _VALIDATING_FOR.reset(token)
