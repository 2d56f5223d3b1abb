"""What the evaluator hands a notification channel, and what the channel answers.

The contract between alert evaluation and delivery: the evaluator builds :class:`Notification`
values (one per alert in a group, all sent together in one call) and calls
:meth:`Channel.send`; a channel delivers them its own way (webhook, Slack, e-mail, Alertmanager,
or the in-memory :class:`~watchkeeper.alerts.doubles.RecordingChannel` tests use) and answers a
:class:`Delivery`. A channel never raises out of ``send``: every failure is a
``Delivery`` with ``delivered=False``, and its ``error`` never contains a secret (URLs with
tokens, passwords, signing keys). The evaluator bounds each call with a deadline of its own, so a
hanging channel never holds evaluation up.

Channels are configured by name in the rules file (``channels:``) or the
``WATCHKEEPER_ALERT_CHANNELS`` setting (JSON); each entry becomes a :class:`ChannelSpec` and
``watchkeeper.alerts.channels.build_channel(spec)`` turns it into a :class:`Channel`, validating
``spec.options`` against the kind's own model and raising :class:`ChannelConfigError` (a
``ValueError``) with a message naming the channel and the option when they are wrong.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable


class Severity(enum.StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class NotificationState(enum.StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert's news: it fires (again, or escalated), or it resolved.

    ``fingerprint`` is stable for one rule and label set across restarts and replicas, so a
    receiver can deduplicate by it (Alertmanager's own identity is the label set, which includes
    ``alertname`` and ``severity``). Times are timezone-aware UTC. ``value`` is the signal's last
    value (``None`` when there was no data). ``labels`` include ``alertname`` (the rule's name)
    and ``severity``; ``annotations`` carry ``summary``, ``description`` and ``runbook_url`` when
    the rule has them. ``group_key`` is shared by the notifications sent together in one call.
    ``repeat`` is ``True`` when the alert was already notified (repeat interval or escalation);
    ``tier`` is the escalation tier (0 first).
    """

    fingerprint: str
    rule: str
    severity: Severity
    state: NotificationState
    value: float | None
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    started_at: datetime
    ended_at: datetime | None = None
    dashboard_url: str | None = None
    group_key: str = ""
    threshold: float | None = None
    repeat: bool = False
    tier: int = 0

    @property
    def summary(self) -> str:
        """The rule's summary, or a plain sentence built from the alert when it has none."""
        text = self.annotations.get("summary")
        if text:
            return text
        shown = "no data" if self.value is None else f"{self.value:g}"
        return f"{self.rule} is {self.state.value} ({self.severity.value}, value {shown})"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened when a channel was asked to send: delivered or not, after how many tries.

    ``error`` is a short, secret-free reason for the last failure (``None`` when delivered).
    ``status`` is the receiver's last status code when there was one (HTTP status, SMTP reply).
    """

    channel: str
    delivered: bool
    attempts: int
    error: str | None = None
    status: int | None = None
    details: Mapping[str, str] = field(default_factory=dict)


class ChannelConfigError(ValueError):
    """A channel's configuration is wrong; the message names the channel and the option."""


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One configured channel before it is built: its name, kind, and the kind's own options.

    ``options`` is the raw mapping from the rules file or setting (``url``, ``secret``,
    ``headers``, ``timeout_seconds``, ``smtp_host``…); only the kind's builder interprets it.
    """

    name: str
    kind: str
    options: Mapping[str, object] = field(default_factory=dict)


@runtime_checkable
class Channel(Protocol):
    """A place notifications go. ``name`` is the name rules refer to it by (``ops-slack``)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str:
        """``webhook``, ``slack``, ``email``, ``alertmanager``, …; shown in the API and logs."""
        ...

    async def send(self, notifications: Sequence[Notification]) -> Delivery:
        """Deliver these (one group: one message where the medium allows), never raising."""
        ...

    async def aclose(self) -> None:
        """Release what the channel holds (HTTP clients, connections); called at stop."""
        ...


@runtime_checkable
class KeepsAlertsAlive(Protocol):
    """A channel whose receiver forgets a firing alert that is not posted again within some
    intervals (Alertmanager resolves it): the channel re-posts what it sent, but only in the
    process that sent it. An evaluator that starts or takes the lease over therefore posts every
    firing alert to such channels again at once."""

    @property
    def resend_interval(self) -> timedelta: ...
