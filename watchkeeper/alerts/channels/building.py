"""From a configured :class:`ChannelSpec` to a working channel, and back to what may be shown.

Options are validated against the kind's model; an error names the channel and the option but
never echoes the value given (it may be a secret). Apprise, the optional long tail, is imported
only when a channel of that kind is built; without it, building one fails with the install
hint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from watchkeeper.alerts.channels.alertmanager import AlertmanagerChannel
from watchkeeper.alerts.channels.apprise import AppriseChannel
from watchkeeper.alerts.channels.email import EmailChannel
from watchkeeper.alerts.channels.options import (
    AlertmanagerOptions,
    AppriseOptions,
    EmailOptions,
    SlackOptions,
    WebhookOptions,
)
from watchkeeper.alerts.channels.slack import SlackChannel
from watchkeeper.alerts.channels.webhook import WebhookChannel
from watchkeeper.alerts.notification import Channel, ChannelConfigError, ChannelSpec
from watchkeeper.model.json import JsonValue
from watchkeeper.redaction import redact_settings

_KINDS: dict[str, tuple[type[BaseModel], Callable[[str, Any], Channel]]] = {
    "webhook": (WebhookOptions, WebhookChannel),
    "slack": (SlackOptions, SlackChannel),
    "email": (EmailOptions, EmailChannel),
    "alertmanager": (AlertmanagerOptions, AlertmanagerChannel),
    "apprise": (AppriseOptions, AppriseChannel),
}
KINDS = frozenset(_KINDS)


def _explain(error: ValidationError) -> str:
    problems = []
    for problem in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in problem["loc"]) or "options"
        problems.append(f"{where}: {problem['msg']}")
    return "; ".join(problems)


def build_channel(spec: ChannelSpec) -> Channel:
    """The channel ``spec`` describes; :class:`ChannelConfigError` names what is wrong."""
    known = _KINDS.get(spec.kind)
    if known is None:
        raise ChannelConfigError(
            f"channel {spec.name!r}: unknown kind {spec.kind!r} "
            f"(one of: {', '.join(sorted(KINDS))})"
        )
    model, make = known
    try:
        options = model.model_validate(dict(spec.options))
    except ValidationError as error:
        raise ChannelConfigError(f"channel {spec.name!r}: {_explain(error)}") from None
    try:
        return make(spec.name, options)
    except OSError as error:  # an e-mail channel's CA file that cannot be read
        raise ChannelConfigError(
            f"channel {spec.name!r}: ca_file cannot be used: {error.strerror or error}"
        ) from None


def shown_options(channel: Channel) -> dict[str, JsonValue]:
    """A channel's options fit for the API and logs: every secret as ``***``."""
    options = getattr(channel, "options", None)
    return redact_settings(options) if isinstance(options, BaseModel) else {}
