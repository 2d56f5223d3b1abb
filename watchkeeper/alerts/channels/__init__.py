"""Notification channels: webhook, Slack, e-mail and Prometheus Alertmanager, one module each.

:func:`build_channel` turns a configured :class:`~watchkeeper.alerts.notification.ChannelSpec`
into a channel; :func:`send_test` sends a test alert through one; :func:`shown_options` is what
the API may show of a channel's options (secrets as ``***``).
"""

from __future__ import annotations

from watchkeeper.alerts.channels.building import KINDS, build_channel, shown_options
from watchkeeper.alerts.channels.sample import send_test

__all__ = ["KINDS", "build_channel", "send_test", "shown_options"]
