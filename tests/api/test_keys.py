import logging

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from watchkeeper.access.keys import ApiKeyAuth, Unauthorized, unauthorized_response
from watchkeeper.config import ConfigurationError, load_settings


def app_with(auth: ApiKeyAuth) -> TestClient:
    app = FastAPI()

    @app.exception_handler(Unauthorized)
    async def handle(request: Request, error: Unauthorized) -> object:
        return unauthorized_response(error)

    @app.get("/secret", dependencies=[Depends(auth)])
    def secret() -> dict[str, str]:
        return {"ok": "yes"}

    return TestClient(app)


def test_keys_are_required_and_checked() -> None:
    settings = load_settings(api_keys=["k-one-0123456789", "k-two-0123456789"])
    client = app_with(ApiKeyAuth.from_settings(settings))
    missing = client.get("/secret")
    assert missing.status_code == 401
    assert "API key is required" in missing.json()["error"]["message"]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/secret", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/secret", headers={"Authorization": "Bearer k-two-0123456789"}).json() == {
        "ok": "yes"
    }
    assert client.get("/secret", headers={"X-API-Key": "k-one-0123456789"}).status_code == 200
    assert (
        client.get("/secret", headers={"Authorization": "Basic k-one-0123456789"}).status_code
        == 401
    )


def test_no_key_and_not_open_fails_at_start_up_naming_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="WATCHKEEPER_API_KEYS"):
        ApiKeyAuth.from_settings(load_settings())


def test_open_access_is_loud(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="watchkeeper"):
        client = app_with(ApiKeyAuth.from_settings(load_settings(open_access=True)))
    assert client.get("/secret").status_code == 200
    assert "WITHOUT an API key" in caplog.text


def test_keys_never_appear_in_settings_repr() -> None:
    settings = load_settings(api_keys=["super-secret-key-123"])
    assert "super-secret-key-123" not in repr(settings)
    assert "super-secret-key-123" not in str(settings.model_dump())
