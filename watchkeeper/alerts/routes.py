"""The alerts API (``/api/v1/alerts``) and ``/health/alerts``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi import Path as FastApiPath
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.access.audit import AUDIT_STATE, AuditAction, record
from watchkeeper.access.guard import needs
from watchkeeper.access.principal import PRINCIPAL_STATE, Forbidden
from watchkeeper.access.roles import Permission, Role
from watchkeeper.alerts.channels import send_test
from watchkeeper.alerts.model import (
    Alert,
    AlertState,
    DeliveryRecord,
    Matcher,
    RuleSource,
    Silence,
    StoredRule,
)
from watchkeeper.alerts.notification import Severity
from watchkeeper.alerts.preview import preview
from watchkeeper.alerts.rules import Rule, RuleError
from watchkeeper.api.errors import NotFound, error_response
from watchkeeper.api.schemas import ACCESS_RESPONSES, ErrorEnvelope
from watchkeeper.model.errors import QueryError

if TYPE_CHECKING:
    from watchkeeper.alerts.component import AlertsComponent

MAX_SILENCE_SECONDS = 90 * 86400
RowId = Annotated[int, FastApiPath(ge=1, le=2**63 - 1, description="A stored row's id.")]
RESPONSES: dict[int | str, dict[str, Any]] = {
    **ACCESS_RESPONSES,
    409: {"model": ErrorEnvelope, "description": "A rule of that name exists already."},
    503: {"model": ErrorEnvelope, "description": "The store cannot be reached; see Retry-After."},
}


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(None, max_length=200, description="Who; default: the key's name.")
    note: str = Field("", max_length=2000)


class NewSilence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matchers: list[Matcher] = Field(min_length=1)
    duration_seconds: int = Field(gt=0, le=MAX_SILENCE_SECONDS)
    by: str | None = Field(None, max_length=200, description="Who; default: the key's name.")
    comment: str = Field("", max_length=2000)


def _time(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "fingerprint": alert.fingerprint,
        "rule": alert.rule,
        "labels": alert.labels,
        "state": alert.state.value,
        "severity": alert.severity.value,
        "value": alert.value,
        "peak_value": alert.peak_value,
        "threshold": alert.threshold,
        "since": _time(alert.fired_at or alert.pending_since),
        "pending_since": _time(alert.pending_since),
        "fired_at": _time(alert.fired_at),
        "resolved_at": _time(alert.resolved_at),
        "evaluated_at": _time(alert.evaluated_at),
        "acknowledged": None
        if alert.acked_at is None
        else {"at": _time(alert.acked_at), "by": alert.acked_by, "note": alert.ack_note},
        "tier": alert.tier,
        "notified_at": _time(alert.notified_at),
    }


def rule_json(stored: StoredRule) -> dict[str, Any]:
    return {
        "name": stored.rule.name,
        "enabled": stored.enabled,
        "source": stored.source.value,
        "updated_at": _time(stored.updated_at),
        "updated_by": stored.updated_by,
        "rule": stored.rule.model_dump(mode="json"),
    }


def silence_json(silence: Silence) -> dict[str, Any]:
    return {
        "id": silence.id,
        "matchers": [matcher.model_dump(mode="json") for matcher in silence.matchers],
        "starts_at": _time(silence.starts_at),
        "ends_at": _time(silence.ends_at),
        "created_by": silence.created_by,
        "comment": silence.comment,
    }


def delivery_json(record: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "alert_id": record.alert_id,
        "channel": record.channel,
        "group": record.group_key,
        "status": record.status.value,
        "attempts": record.attempts,
        "error": record.error,
        "created_at": _time(record.created_at),
        "sent_at": _time(record.sent_at),
    }


def alerts_routes(  # noqa: PLR0915 - one route table, read top to bottom
    component: AlertsComponent,
    auth: Callable[..., object] | None,
    prefix: str,
    api_prefix: str,
) -> APIRouter | None:
    if auth is None:
        return None
    router = APIRouter()
    api = APIRouter(
        prefix=f"{api_prefix}/alerts",
        tags=["alerts"],
        dependencies=[Depends(auth)],
        responses=RESPONSES,
    )

    async def run(function: Any, *args: Any) -> Any:
        _, alerts = await asyncio.to_thread(component.stores.get)
        return await asyncio.to_thread(getattr(alerts, function), *args)

    # -- rules -------------------------------------------------------------------------------

    @api.get("/rules", summary="Alert rules, enabled or not")
    async def list_rules() -> dict[str, Any]:
        rules = await run("rules")
        return {"rules": [rule_json(stored) for stored in rules]}

    @api.post(
        "/rules",
        status_code=status.HTTP_201_CREATED,
        response_model=None,
        summary="Create an alert rule",
    )
    async def create_rule(request: Request, rule: Rule) -> dict[str, Any] | JSONResponse:
        _check_channels(component, rule)
        if await run("rule", rule.name) is not None:
            return error_response(409, f"an alert rule named {rule.name!r} exists already")
        stored = await run("put_rule", rule, RuleSource.API, _actor(request, None))
        await _audit(request, AuditAction.RULE_CHANGED, rule.name, after=rule_json(stored))
        component.wake.set()
        return rule_json(stored)

    @api.post(
        "/rules/preview",
        summary="A rule's signal over the last day, where it would fire",
        openapi_extra=needs(Permission.READ),  # a read, though its rule is sent in a body
    )
    async def preview_rule(rule: Rule) -> dict[str, Any]:
        _check_channels(component, rule)
        store, alerts = await asyncio.to_thread(component.stores.get)
        points = await asyncio.to_thread(
            preview, rule, store, alerts, component.settings, datetime.now(UTC)
        )
        return {
            "points": [
                {
                    "time": point.time.isoformat(),
                    "labels": point.labels,
                    "value": point.value,
                    "level": point.level.value if point.level else None,
                }
                for point in points
            ],
            "thresholds": rule.thresholds.model_dump(mode="json"),
        }

    @api.get("/rules/{name}", summary="One alert rule")
    async def get_rule(name: str) -> dict[str, Any]:
        stored = await run("rule", name)
        if stored is None:
            raise NotFound(f"no alert rule named {name!r}")
        return rule_json(stored)

    @api.put("/rules/{name}", summary="Replace an alert rule (or create it)")
    async def put_rule(request: Request, name: str, rule: Rule) -> dict[str, Any]:
        if rule.name != name:
            raise QueryError(f"the rule's name ({rule.name!r}) differs from the path's ({name!r})")
        _check_channels(component, rule)
        before = await run("rule", name)
        stored = await run("put_rule", rule, RuleSource.API, _actor(request, None))
        await _audit(
            request,
            AuditAction.RULE_CHANGED,
            name,
            before=rule_json(before) if before else None,
            after=rule_json(stored),
        )
        component.wake.set()
        return rule_json(stored)

    @api.delete("/rules/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a rule")
    async def delete_rule(request: Request, name: str) -> None:
        before = await run("rule", name)
        if before is None or not await run("delete_rule", name):
            raise NotFound(f"no alert rule named {name!r}")
        await _audit(request, AuditAction.RULE_CHANGED, name, before=rule_json(before))
        component.wake.set()

    async def set_enabled(request: Request, name: str, enabled: bool) -> dict[str, Any]:
        if not await run("set_enabled", name, enabled, _actor(request, None)):
            raise NotFound(f"no alert rule named {name!r}")
        stored = rule_json(await run("rule", name))
        await _audit(
            request, AuditAction.RULE_CHANGED, name, before={"enabled": not enabled}, after=stored
        )
        component.wake.set()
        return stored

    @api.post("/rules/{name}/disable", summary="Turn a rule off (its alerts resolve quietly)")
    async def disable_rule(request: Request, name: str) -> dict[str, Any]:
        return await set_enabled(request, name, False)

    @api.post("/rules/{name}/enable", summary="Turn a rule on")
    async def enable_rule(request: Request, name: str) -> dict[str, Any]:
        return await set_enabled(request, name, True)

    # -- alerts ------------------------------------------------------------------------------

    @api.get("", summary="Firing and pending alerts")
    async def active() -> dict[str, Any]:
        alerts = await run("open_alerts")
        ordered = sorted(alerts, key=_urgency)
        return {"alerts": [alert_json(alert) for alert in ordered]}

    @api.get("/history", summary="Alerts newest first, resolved ones included")
    async def history(
        limit: int = Query(100, ge=1, le=1000), rule: str | None = None
    ) -> dict[str, Any]:
        alerts = await run("recent_alerts", limit, rule)
        return {"alerts": [alert_json(alert) for alert in alerts]}

    @api.get("/notifications", summary="Notifications sent or queued, with their attempts")
    async def notifications(limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        records = await run("notifications", limit)
        return {"notifications": [delivery_json(record) for record in records]}

    @api.get("/channels", summary="Configured channels (names and kinds, never their secrets)")
    async def channels() -> dict[str, Any]:
        return {
            "channels": [
                {"name": name, "kind": channel.kind}
                for name, channel in sorted(component.evaluator.channels.items())
            ]
        }

    @api.post("/channels/{name}/test", summary="Send a test notification through a channel")
    async def test_channel(name: str) -> dict[str, Any]:
        channel = component.evaluator.channels.get(name)
        if channel is None:
            raise NotFound(f"no channel named {name!r}")
        delivery = await send_test(channel, component.settings.dashboard_url)
        return {
            "channel": name,
            "delivered": delivery.delivered,
            "attempts": delivery.attempts,
            "error": delivery.error,
        }

    @api.get("/silences", summary="Silences in force (and ended ones with expired=true)")
    async def silences(expired: bool = False) -> dict[str, Any]:
        found = await run("silences", time.time(), expired)
        return {"silences": [silence_json(silence) for silence in found]}

    @api.post(
        "/silences",
        status_code=status.HTTP_201_CREATED,
        summary="Silence alerts by labels",
        openapi_extra=needs(Permission.ACKNOWLEDGE),
    )
    async def silence(request: Request, body: NewSilence) -> dict[str, Any]:
        now = time.time()
        actor = _actor(request, body.by)
        created = await run(
            "add_silence", body.matchers, now, now + body.duration_seconds, actor, body.comment
        )
        shown = silence_json(created)
        await _audit(request, AuditAction.SILENCE_CHANGED, str(created.id), after=shown)
        return shown

    @api.delete(
        "/silences/{silence_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="End a silence",
        openapi_extra=needs(Permission.ACKNOWLEDGE),
    )
    async def end_silence(request: Request, silence_id: RowId) -> None:
        if not await run("expire_silence", silence_id, time.time()):
            raise NotFound(f"no silence {silence_id} in force")
        await _audit(request, AuditAction.SILENCE_CHANGED, str(silence_id), after={"ended": True})

    @api.get("/{alert_id}", summary="One alert with its history and notifications")
    async def one(alert_id: RowId) -> dict[str, Any]:
        alert = await run("alert", alert_id)
        if alert is None:
            raise NotFound(f"no alert {alert_id}")
        events = await run("events", alert_id)
        deliveries = await run("notifications", 200, alert_id)
        return {
            **alert_json(alert),
            "history": [
                {**asdict(entry), "time": _time(entry.time), "event": entry.event.value}
                for entry in events
            ],
            "notifications": [delivery_json(record) for record in deliveries],
        }

    @api.post(
        "/{alert_id}/ack",
        summary="Acknowledge an alert: no more repeats or escalation",
        openapi_extra=needs(Permission.ACKNOWLEDGE),
    )
    async def acknowledge(
        request: Request, alert_id: RowId, body: Acknowledgement
    ) -> dict[str, Any]:
        await _governed(request, alert_id, run)
        alert = await run("acknowledge", alert_id, _actor(request, body.by), body.note)
        if alert is None:
            raise NotFound(f"no open alert {alert_id}")
        shown = alert_json(alert)
        await _audit(request, AuditAction.ALERT_ACKNOWLEDGED, str(alert_id), after=shown)
        return shown

    router.include_router(api)

    # Behind the key like health's figures: alerts' labels and values describe the app.
    @router.get(
        f"{prefix}/health/alerts",
        tags=["health"],
        summary="Alerts' health",
        dependencies=[Depends(auth)],
        responses={**RESPONSES, 200: {"content": {"application/health+json": {}}}},
    )
    async def health_alerts() -> JSONResponse:
        opened = component.stores.get_or_none()
        if opened is None:
            return error_response(503, "Watchkeeper's store cannot be reached right now")
        alerts = await asyncio.to_thread(opened[1].open_alerts)
        lease = await asyncio.to_thread(opened[1].lease_holder)
        firing = [alert for alert in alerts if alert.state is AlertState.FIRING]
        cycle = component.evaluator.last_cycle
        critical = any(alert.severity is Severity.CRITICAL for alert in firing)
        state = "fail" if critical else "warn" if firing else "pass"
        return JSONResponse(
            {
                "status": state,
                "firing": len(firing),
                "pending": len(alerts) - len(firing),
                "alerts": [alert_json(alert) for alert in sorted(alerts, key=_urgency)],
                "evaluator": None
                if lease is None
                else {"holder": lease[0], "lease_expires": _time(lease[1]), "term": lease[2]},
                "last_cycle_here": None
                if cycle is None
                else {"rules": cycle.rules, "alerts": cycle.alerts, "seconds": cycle.seconds},
            },
            media_type="application/health+json",
        )

    return router


async def _audit(
    request: Request,
    action: AuditAction,
    resource: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    """Record the change in the audit log when access control keeps one."""
    if getattr(request.state, AUDIT_STATE, None) is None:
        return
    await asyncio.to_thread(record, request, action, resource, before=before, after=after)


async def _governed(request: Request, alert_id: int, run: Callable[..., Awaitable[Any]]) -> None:
    """An organisation's admin acts on that organisation's alerts only: those of rules narrowed
    to it. Super admins (and open access) act on every alert."""
    principal = getattr(request.state, PRINCIPAL_STATE, None)
    if principal is None or principal.role is Role.SUPER_ADMIN:
        return
    alert = await run("alert", alert_id)
    if alert is None:
        raise NotFound(f"no open alert {alert_id}")
    stored = await run("rule", alert.rule)
    organisation = stored.rule.signal.organisation if stored is not None else None
    if not principal.governs(organisation):
        raise Forbidden("an organisation's admin acknowledges only its organisation's alerts")


def _actor(request: Request, given: str | None) -> str:
    """Who acts: as the caller says, else the key's name, else ``api``."""
    if given:
        return given
    principal = getattr(request.state, PRINCIPAL_STATE, None)
    name = getattr(principal, "name", None)
    return name if isinstance(name, str) and name else "api"


def _check_channels(component: AlertsComponent, rule: Rule) -> None:
    """A 400 for a rule whose fields do not fit together or that names unknown channels."""
    try:
        rule.checked()
    except RuleError as error:
        raise QueryError(str(error)) from None
    unknown = sorted(rule.channels.names() - set(component.evaluator.channels))
    if unknown:
        raise QueryError(
            f"the rule notifies channels that are not configured: {', '.join(unknown)}"
        )


def _urgency(alert: Alert) -> tuple[int, int, float]:
    return (
        0 if alert.state is AlertState.FIRING else 1,
        0 if alert.severity is Severity.CRITICAL else 1,
        -(alert.fired_at or alert.pending_since),
    )
