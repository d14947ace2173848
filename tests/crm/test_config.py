"""Config files: valid ones load; broken ones name file, line and key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from crm.config import Settings, expand_env, load_settings
from crm.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid_and_turns_no_channel_on() -> None:
    settings = load_settings(ROOT / "config.example.toml", environ={})
    assert settings.database.url.startswith("sqlite://")
    assert not settings.telegram.enabled and not settings.email.enabled
    assert not settings.sms.enabled


def test_secrets_come_from_the_environment() -> None:
    settings = load_settings(ROOT / "config.example.toml",
                             environ={"TELEGRAM_TOKEN": "123:abc"})
    assert settings.telegram.token == "123:abc"
    assert settings.telegram.enabled
    assert expand_env("${NOPE:-fallback}/${NOPE}", {}) == "fallback/"


def test_example_config_holds_no_secret() -> None:
    text = (ROOT / "config.example.toml").read_text()
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        if any(w in key for w in ("token", "password", "secret", "auth_token")):
            assert value.strip() in ('""',) or value.strip().startswith('"${'), line


@pytest.mark.parametrize(("text", "expected"), [
    ("[database]\nurl = 5\n", "config.toml:2: [database] url: Input should be a valid string"),
    ("[htp]\nport = 1\n", "config.toml:1: [htp]: unknown section"),
    ("[http]\nprot = 1\n", "config.toml:2: [http] prot: unknown key"),
    ("[http]\nport = \"eighty\"\n", "config.toml:2: [http] port: Input should be a valid integer"),
    ("[routing]\nstrategy = \"random\"\n", "[routing] strategy: Input should be 'round_robin'"),
    ("[email]\nimap_host = \"imap.example.com\"\n",
     "config.toml:1: [email] imap_username: required when the email channel is configured"),
    ("[telegram]\ntoken = \"1:x\"\nmode = \"webhook\"\n",
     "[telegram] webhook_secret: required when mode = \"webhook\""),
    ("[http\nport = 1\n", "config.toml: not valid TOML"),
])
def test_bad_config_names_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text), environ={})
    assert expected in str(err.value).replace(str(tmp_path) + "/", "")


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings(tmp_path / "absent.toml")


def test_a_wrong_secret_is_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, "[telegram]\ntoken = 12345\n"), environ={})
    assert "12345" not in str(err.value)


def test_email_fallback_charsets() -> None:
    settings = load_settings(ROOT / "config.example.toml", environ={})
    assert settings.email.fallback_charsets == ["cp1251", "koi8-r", "cp1252"]


@pytest.mark.parametrize(("value", "reason"), [
    ('["cp1251", "latin-9000"]', "'latin-9000' is not a charset name Python knows"),
    ('["utf-16"]', "'utf-16' does not read ASCII as ASCII"),
    ('"cp1251"', "Input should be a valid list"),
])
def test_bad_fallback_charsets_name_the_key(tmp_path: Path, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, f"[email]\nfallback_charsets = {value}\n"), environ={})
    assert "config.toml:2: [email] fallback_charsets: " in str(err.value)
    assert reason in str(err.value)


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out: list[str] = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out += _keys(kind, f"{prefix}{name}.")
        else:
            out.append(f"{prefix}{name}")
    return out


def test_every_setting_is_documented_in_the_example_config() -> None:
    """A key the code reads but config.example.toml does not show is a key nobody finds."""
    raw = tomllib.loads((ROOT / "config.example.toml").read_text())

    def present(path: str) -> bool:
        node: object = raw
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    text = (ROOT / "config.example.toml").read_text()
    # A key may be shown commented out (`# key = …`), a list of tables as `# [[name]]`.
    missing = [k for k in _keys(Settings) if not present(k)
               and f"# {k.rsplit('.', 1)[-1]} =" not in text and f"# [[{k}]]" not in text]
    assert not missing, f"not in config.example.toml: {missing}"
