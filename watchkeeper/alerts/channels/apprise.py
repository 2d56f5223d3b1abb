"""Apprise: the long tail of services (Teams, Discord, Telegram, PagerDuty, ntfy, …) by URL.

An optional extra (``pip install 'watchkeeper[apprise]'``), imported only when a channel of this
kind is configured. Each of ``urls`` is an Apprise URL (``msteams://…``, ``tgram://…``); they are
secrets, as such URLs carry tokens. The group is sent as one message: its title line, then the
plain text the e-mail channel sends, typed ``failure`` (critical), ``warning``, or ``success``
once every alert resolved. Apprise reports only that a service failed, not whether a retry
would help, and a retry would repeat the message to the services that did receive it: one
attempt by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

from watchkeeper.alerts.channels.attempts import Outcome, Scrubber, deliver
from watchkeeper.alerts.channels.options import AppriseOptions
from watchkeeper.alerts.channels.wording import group_state, group_title, plain_text
from watchkeeper.alerts.notification import (
    ChannelConfigError,
    Delivery,
    Notification,
    NotificationState,
    Severity,
)

INSTALL_HINT = "the apprise kind needs Apprise: pip install 'watchkeeper[apprise]'"


def _library() -> ModuleType | None:
    try:
        import apprise as library  # noqa: PLC0415 - an optional extra, imported when configured
    except ImportError:
        return None
    return library


class AppriseChannel:
    kind = "apprise"

    def __init__(self, name: str, options: AppriseOptions) -> None:
        self._name = name
        self.options = options
        library = _library()
        if library is None:
            raise ChannelConfigError(f"channel {name!r}: {INSTALL_HINT}")
        self._library = library
        self._apprise = self._library.Apprise()
        for index, url in enumerate(options.urls):
            if not self._apprise.add(url.get_secret_value()):
                raise ChannelConfigError(
                    f"channel {name!r}: urls.{index}: not a URL Apprise knows "
                    "(see Apprise's list of services)"
                )
        self._scrub = Scrubber.of(url.get_secret_value() for url in options.urls)

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"AppriseChannel(name={self._name!r}, options={self.options!r})"

    def _kind_of(self, notifications: Sequence[Notification]) -> object:
        types = self._library.NotifyType
        if group_state(notifications) is NotificationState.RESOLVED:
            return types.SUCCESS
        firing = [item for item in notifications if item.state is NotificationState.FIRING]
        if any(item.severity is Severity.CRITICAL for item in firing):
            return types.FAILURE
        return types.WARNING

    async def send(self, notifications: Sequence[Notification]) -> Delivery:
        return await deliver(
            self._name,
            lambda: (group_title(notifications), plain_text(notifications)),
            lambda message: self._attempt(*message, self._kind_of(notifications)),
            self.options.retry_policy(),
            self.options.timeout_seconds,
            self.options.deadline_seconds,
            self._scrub,
        )

    async def _attempt(self, title: str, body: str, notify_type: object) -> Outcome:
        result = await self._apprise.async_notify(
            body=body,
            title=title,
            notify_type=notify_type,
            body_format=self._library.NotifyFormat.TEXT,
        )
        if result:
            return Outcome(True)
        return Outcome(False, error="Apprise could not notify every service", temporary=True)

    async def aclose(self) -> None:
        """Apprise holds no connection between notifications."""
