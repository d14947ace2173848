"""Customer-facing texts, translatable: one TOML catalogue per language in crm/locales/."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

LANGUAGES = ("en", "ru")
DEFAULT = "en"


@cache
def _catalogue(language: str) -> dict[str, str]:
    text = resources.files("crm").joinpath(f"locales/{language}.toml").read_text("utf-8")
    return {k: str(v) for k, v in tomllib.loads(text).items()}


def pick_language(code: str | None, default: str = DEFAULT) -> str:
    lang = (code or "").split("-")[0].lower()
    return lang if lang in LANGUAGES else default


def t(key: str, language: str | None = None, /, **values: object) -> str:
    """The text `key` in `language` (falling back to English), with `{placeholders}` filled."""
    lang = pick_language(language)
    template = _catalogue(lang).get(key) or _catalogue(DEFAULT).get(key)
    if template is None:
        raise KeyError(f"no text {key!r} in crm/locales/{DEFAULT}.toml")
    return template.format(**values) if values else template
