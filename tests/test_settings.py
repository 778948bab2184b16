"""Settings: documented defaults, .env files, and .env.example kept complete."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import Settings
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def test_defaults_are_the_documented_ones() -> None:
    settings = Settings(_env_file=None)
    assert settings.database_url == "sqlite+aiosqlite:///./data/outagebot.db"
    assert (settings.web_host, settings.web_port) == ("127.0.0.1", 8080)
    assert settings.poll_interval_seconds == 30
    assert settings.enabled_chat_platforms == []


def test_env_file_is_read_and_secrets_stay_hidden(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("POLL_INTERVAL_SECONDS=5\nDISCORD_TOKEN=very-secret-token\nSLACK_BOT_TOKEN=\n")
    settings = Settings(_env_file=env)
    assert settings.poll_interval_seconds == 5
    assert settings.discord_token is not None
    assert "very-secret-token" not in repr(settings)
    assert settings.slack_bot_token is None  # blank means unset
    assert settings.enabled_chat_platforms == ["discord"]


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, poll_interval_seconds=0)
    with pytest.raises(ValidationError):
        Settings(_env_file=None, log_level="LOUD")


def test_env_example_lists_every_setting_and_readme_documents_it() -> None:
    example = (REPO / ".env.example").read_text()
    readme = (REPO / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"{name.upper()}=" in example, f"{name.upper()} missing from .env.example"
        assert f"`{name.upper()}`" in readme, f"{name.upper()} missing from the README table"


@pytest.mark.parametrize("token", ["short", "x" * 31, " " + "y" * 30 + " "])
def test_a_short_admin_token_is_refused_with_a_clear_error(token: str) -> None:
    with pytest.raises(ValidationError, match="at least 32 characters") as error:
        Settings(_env_file=None, api_admin_token=token)
    assert token.strip() not in str(error.value)  # the message never echoes the token


def test_a_long_or_blank_admin_token_is_accepted() -> None:
    token = "z" * 32
    settings = Settings(_env_file=None, api_admin_token=token)
    assert settings.api_admin_token is not None
    assert settings.api_admin_token.get_secret_value() == token
    assert Settings(_env_file=None, api_admin_token="  ").api_admin_token is None
