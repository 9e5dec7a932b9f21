"""Event service (tev + WS-BaseNotification): pull-point subscriptions delivering simulated motion.

Each camera's motion switches on and off every ``period_s`` seconds, at a phase of its own, so a
gateway polling many cameras sees a steady trickle of events. The first PullMessages of a
subscription (and the first after SetSynchronizationPoint) reports the current state with
``PropertyOperation="Initialized"``; later pulls report each switch with ``"Changed"``. A pull with
nothing to report waits (long poll) until the next switch or the request's Timeout, whichever
comes first, at most ``MAX_WAIT_S``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import math
import time
from dataclasses import dataclass

from xueliang.connectors.onvif.simulator.durations import parse_duration, parse_termination
from xueliang.connectors.onvif.simulator.errors import SoapFault
from xueliang.connectors.onvif.simulator.models import SimCamera
from xueliang.connectors.onvif.simulator.soap_context import SoapContext, SoapHandler
from xueliang.connectors.onvif.simulator.soap_request import child_text
from xueliang.connectors.onvif.simulator.soap_xml import NS_EVENTS, NS_WSNT, xs_datetime

PULLPOINT_PREFIX = "/onvif/pullpoint/"
MAX_PULLPOINTS_PER_CAMERA = 10
MAX_WAIT_S = 60.0
DEFAULT_TERMINATION_S = 60.0
TOPIC = "tns1:RuleEngine/CellMotionDetector/Motion"
CONCRETE_SET = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"

_EVENT_PROPERTIES = (
    "<tev:GetEventPropertiesResponse>"
    "<tev:TopicNamespaceLocation>http://www.onvif.org/onvif/ver10/topics/topicns.xml</tev:TopicNamespaceLocation>"
    '<wsnt:FixedTopicSet>true</wsnt:FixedTopicSet><wstop:TopicSet><tns1:RuleEngine wstop:topic="true">'
    '<CellMotionDetector wstop:topic="true"><Motion wstop:topic="true"><tt:MessageDescription IsProperty="true">'
    '<tt:Source><tt:SimpleItemDescription Name="VideoSourceConfigurationToken" Type="tt:ReferenceToken"/>'
    '<tt:SimpleItemDescription Name="VideoAnalyticsConfigurationToken" Type="tt:ReferenceToken"/>'
    '<tt:SimpleItemDescription Name="Rule" Type="xs:string"/></tt:Source>'
    '<tt:Data><tt:SimpleItemDescription Name="IsMotion" Type="xs:boolean"/></tt:Data></tt:MessageDescription>'
    "</Motion></CellMotionDetector></tns1:RuleEngine></wstop:TopicSet>"
    f"<wsnt:TopicExpressionDialect>{CONCRETE_SET}</wsnt:TopicExpressionDialect>"
    "<wsnt:TopicExpressionDialect>http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete"
    "</wsnt:TopicExpressionDialect><tev:MessageContentFilterDialect>"
    "http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter</tev:MessageContentFilterDialect>"
    "<tev:MessageContentSchemaLocation>http://www.onvif.org/onvif/ver10/schema/onvif.xsd"
    "</tev:MessageContentSchemaLocation></tev:GetEventPropertiesResponse>"
)


@dataclass(slots=True)
class Subscription:
    """One pull point of one camera."""

    id: str
    camera_index: int
    expires: float  # wall-clock seconds
    last_pull: float = 0.0  # wall-clock seconds of the last delivered state
    initialized: bool = False


def _message(when: float, skew: float, operation: str, motion: bool) -> str:
    stamp = xs_datetime(dt.datetime.fromtimestamp(when + skew, dt.UTC))
    return (
        f'<wsnt:NotificationMessage><wsnt:Topic Dialect="{CONCRETE_SET}">{TOPIC}</wsnt:Topic><wsnt:Message>'
        f'<tt:Message UtcTime="{stamp}" PropertyOperation="{operation}"><tt:Source>'
        '<tt:SimpleItem Name="VideoSourceConfigurationToken" Value="VideoSourceConfig_1"/>'
        '<tt:SimpleItem Name="VideoAnalyticsConfigurationToken" Value="VideoAnalyticsToken"/>'
        '<tt:SimpleItem Name="Rule" Value="MyMotionDetectorRule"/></tt:Source>'
        f'<tt:Data><tt:SimpleItem Name="IsMotion" Value="{"true" if motion else "false"}"/></tt:Data>'
        "</tt:Message></wsnt:Message></wsnt:NotificationMessage>"
    )


class EventHub:
    """All pull-point subscriptions of the simulator and the motion schedule of every camera."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._subscriptions: dict[str, Subscription] = {}
        self._by_camera: dict[int, set[str]] = {}
        self._ids = itertools.count(1)
        self.expired = 0
        self.dropped_messages = 0

    def motion_at(self, camera: SimCamera, when: float) -> bool:
        """Whether the camera sees motion at wall-clock time ``when``."""
        return math.floor((when + camera.motion_phase_s) / self.period_s) % 2 == 1

    def _switches(self, camera: SimCamera, after: float, until: float) -> list[tuple[float, bool]]:
        first = math.floor((after + camera.motion_phase_s) / self.period_s) + 1
        last = math.floor((until + camera.motion_phase_s) / self.period_s)
        return [(k * self.period_s - camera.motion_phase_s, k % 2 == 1) for k in range(first, last + 1)]

    def _next_switch(self, camera: SimCamera, after: float) -> float:
        k = math.floor((after + camera.motion_phase_s) / self.period_s) + 1
        return k * self.period_s - camera.motion_phase_s

    def _subscription(self, ctx: SoapContext) -> Subscription:
        sub_id = ctx.path.removeprefix(PULLPOINT_PREFIX)
        sub = self._subscriptions.get(sub_id)
        if sub is None or sub.camera_index != ctx.camera.index or not ctx.path.startswith(PULLPOINT_PREFIX):
            raise SoapFault("Sender", ("ter:InvalidArgVal", "ter:ResourceUnknown"), f"no subscription at {ctx.path}")
        if sub.expires < time.time():
            self._forget(sub)
            self.expired += 1
            raise SoapFault("Sender", ("ter:InvalidArgVal", "ter:ResourceUnknown"), "subscription expired")
        return sub

    def _forget(self, sub: Subscription) -> None:
        self._subscriptions.pop(sub.id, None)
        ids = self._by_camera.get(sub.camera_index)
        if ids is not None:
            ids.discard(sub.id)

    def _prune(self, camera_index: int) -> int:
        """Drop the camera's expired subscriptions; return how many live ones remain."""
        now = time.time()
        ids = self._by_camera.setdefault(camera_index, set())
        for sub_id in list(ids):
            sub = self._subscriptions[sub_id]
            if sub.expires < now:
                self._forget(sub)
                self.expired += 1
        return len(ids)

    def _termination(self, ctx: SoapContext, name: str, default: float | None) -> float:
        value = child_text(ctx.request.body, name)
        skew = ctx.camera.faults.clock_skew_s
        if not value:
            if default is None:
                raise SoapFault("Sender", ("ter:InvalidArgVal",), f"{name} is required")
            return time.time() + default
        try:
            return parse_termination(value, ctx.now).timestamp() - skew
        except ValueError as exc:
            raise SoapFault("Sender", ("ter:InvalidArgVal",), f"{name}: {exc}") from exc

    def _times(self, ctx: SoapContext, expires: float) -> tuple[str, str]:
        skew = ctx.camera.faults.clock_skew_s
        return xs_datetime(ctx.now), xs_datetime(dt.datetime.fromtimestamp(expires + skew, dt.UTC))

    # --- operations ----------------------------------------------------------------------------
    def get_event_properties(self, ctx: SoapContext) -> str:
        """The topic set: cell motion detection."""
        return _EVENT_PROPERTIES

    def create_pull_point(self, ctx: SoapContext) -> str:
        """Create a pull point; at most MAX_PULLPOINTS_PER_CAMERA live ones per camera."""
        if self._prune(ctx.camera.index) >= MAX_PULLPOINTS_PER_CAMERA:
            raise SoapFault("Receiver", ("ter:Action", "ter:TooManySubscriptions"), "too many pull points")
        expires = self._termination(ctx, "InitialTerminationTime", DEFAULT_TERMINATION_S)
        sub = Subscription(id=str(next(self._ids)), camera_index=ctx.camera.index, expires=expires)
        self._subscriptions[sub.id] = sub
        self._by_camera[sub.camera_index].add(sub.id)
        current, termination = self._times(ctx, expires)
        return (
            "<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>"
            f"<wsa:Address>{ctx.http_base}{PULLPOINT_PREFIX}{sub.id}</wsa:Address></tev:SubscriptionReference>"
            f"<wsnt:CurrentTime>{current}</wsnt:CurrentTime><wsnt:TerminationTime>{termination}</wsnt:TerminationTime>"
            "</tev:CreatePullPointSubscriptionResponse>"
        )

    async def pull_messages(self, ctx: SoapContext) -> str:
        """Deliver the motion switches since the last pull; long-poll when there are none."""
        sub = self._subscription(ctx)
        try:
            timeout = min(parse_duration(child_text(ctx.request.body, "Timeout") or "PT1S"), MAX_WAIT_S)
            limit = max(1, int(child_text(ctx.request.body, "MessageLimit") or "100"))
        except ValueError as exc:
            raise SoapFault("Sender", ("ter:InvalidArgVal",), f"Timeout/MessageLimit: {exc}") from exc
        camera, skew = ctx.camera, ctx.camera.faults.clock_skew_s
        now = time.time()
        if not sub.initialized:
            sub.initialized, sub.last_pull = True, now
            messages = [_message(now, skew, "Initialized", self.motion_at(camera, now))]
        else:
            switches = self._switches(camera, sub.last_pull, now)
            if not switches:
                wait = min(timeout, max(0.0, self._next_switch(camera, now) - now) + 0.01)
                await asyncio.sleep(wait)
                now = time.time()
                switches = self._switches(camera, sub.last_pull, now)
            sub.last_pull = now
            if len(switches) > limit:
                self.dropped_messages += len(switches) - limit
                switches = switches[-limit:]
            messages = [_message(when, skew, "Changed", motion) for when, motion in switches]
        current, termination = self._times(ctx, sub.expires)
        return (
            f"<tev:PullMessagesResponse><tev:CurrentTime>{current}</tev:CurrentTime>"
            f"<tev:TerminationTime>{termination}</tev:TerminationTime>{''.join(messages)}</tev:PullMessagesResponse>"
        )

    def renew(self, ctx: SoapContext) -> str:
        """Extend the subscription."""
        sub = self._subscription(ctx)
        sub.expires = self._termination(ctx, "TerminationTime", DEFAULT_TERMINATION_S)
        current, termination = self._times(ctx, sub.expires)
        return (
            f"<wsnt:RenewResponse><wsnt:TerminationTime>{termination}</wsnt:TerminationTime>"
            f"<wsnt:CurrentTime>{current}</wsnt:CurrentTime></wsnt:RenewResponse>"
        )

    def unsubscribe(self, ctx: SoapContext) -> str:
        """Delete the subscription."""
        self._forget(self._subscription(ctx))
        return "<wsnt:UnsubscribeResponse/>"

    def set_synchronization_point(self, ctx: SoapContext) -> str:
        """Report the current state again on the next pull."""
        self._subscription(ctx).initialized = False
        return "<tev:SetSynchronizationPointResponse/>"

    def handlers(self) -> dict[tuple[str, str], SoapHandler]:
        """The SOAP operations this hub answers."""
        return {
            (NS_EVENTS, "GetEventProperties"): self.get_event_properties,
            (NS_EVENTS, "CreatePullPointSubscription"): self.create_pull_point,
            (NS_EVENTS, "PullMessages"): self.pull_messages,
            (NS_EVENTS, "SetSynchronizationPoint"): self.set_synchronization_point,
            (NS_WSNT, "Renew"): self.renew,
            (NS_WSNT, "Unsubscribe"): self.unsubscribe,
        }
