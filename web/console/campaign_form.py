"""The campaign editor's form, as data: the posted fields to the campaign as written (the body
crm/campaigns/spec.py `parse_spec` reads, as a TOML file or the API would give it), and a
stored campaign back to the form's fields. Pure: no I/O, and no rule of what a campaign may
be: the spec checks that, naming the field.

Fields: `name`, `segment`, `ch1`…`ch3` (the channels in order of preference); per variant
`A.`, `B.`, `C.` (B and C when `B.on`, `C.on`): `telegram.text`, `telegram.b0.text`,
`telegram.b0.url` (link buttons), `telegram.keep_image`, `email.subject`, `email.text`,
`email.html`, `sms.text`; `ab.share` (percent), `ab.metric`, `ab.wait`; `at`, `timezone`,
`quiet` (default, none, custom) with `quiet_hours`; `track_links`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CHANNELS = ("telegram", "email", "sms")
VARIANTS = ("A", "B", "C")
BUTTONS = 3
METRICS = ("reply_rate", "click_rate")
QUIET = ("default", "none", "custom")


def _text(form: Mapping[str, Any], name: str, limit: int = 200) -> str:
    # One more than the spec allows: too long is then refused by the spec, naming the field.
    return str(form.get(name, "")).replace("\r\n", "\n").strip()[:limit + 1]


def channels_of(form: Mapping[str, Any]) -> list[str]:
    chosen: list[str] = []
    for slot in ("ch1", "ch2", "ch3"):
        value = str(form.get(slot, ""))
        if value in CHANNELS and value not in chosen:
            chosen.append(value)
    return chosen


def variants_of(form: Mapping[str, Any]) -> list[str]:
    return [v for v in VARIANTS if v == "A" or form.get(f"{v}.on") == "on"]


def _variant(form: Mapping[str, Any], v: str, channels: list[str],
             before: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": v}
    if "telegram" in channels:
        telegram: dict[str, Any] = {"text": _text(form, f"{v}.telegram.text", 4000)}
        buttons = [{"text": _text(form, f"{v}.telegram.b{i}.text", 64),
                    "url": _text(form, f"{v}.telegram.b{i}.url", 1000)}
                   for i in range(BUTTONS)]
        buttons = [b for b in buttons if b["text"] or b["url"]]
        if buttons:
            telegram["buttons"] = buttons
        image = ((before or {}).get("telegram") or {}).get("image_file")
        if image and form.get(f"{v}.telegram.keep_image") == "on":
            telegram["image_file"] = image  # stored when written (the CLI's file); kept
        out["telegram"] = telegram
    if "email" in channels:
        email = {"subject": _text(form, f"{v}.email.subject", 200),
                 "text": _text(form, f"{v}.email.text", 100_000)}
        html = _text(form, f"{v}.email.html", 500_000)
        if html:
            email["html"] = html
        out["email"] = email
    if "sms" in channels:
        out["sms"] = {"text": _text(form, f"{v}.sms.text", 1600)}
    return out


def _share(value: str) -> float | str:
    try:
        return round(float(value.replace(",", ".")) / 100, 4)
    except ValueError:
        return value  # the spec says what is wrong with it


def to_raw(form: Mapping[str, Any], before: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The campaign as written. `before`: the stored campaign's spec, for what the form does
    not hold (its marketer, error threshold, a stored image)."""
    channels = channels_of(form)
    old = {v.get("name"): v for v in (before or {}).get("variants", [])}
    raw: dict[str, Any] = {
        "name": _text(form, "name"), "segment": _text(form, "segment", 64),
        "channels": channels,
        "variants": [_variant(form, v, channels, old.get(v)) for v in variants_of(form)],
        "track_links": form.get("track_links") == "on",
    }
    if len(raw["variants"]) > 1:
        metric = str(form.get("ab.metric", ""))
        raw["ab"] = {"test_share": _share(_text(form, "ab.share", 10) or "20"),
                     "metric": metric if metric in METRICS else "reply_rate",
                     "wait": _text(form, "ab.wait", 20) or "4h"}
    schedule: dict[str, Any] = {"timezone": _text(form, "timezone", 64) or "UTC"}
    at = _text(form, "at", 30)
    if at:
        schedule["at"] = at
    quiet = str(form.get("quiet", "default"))
    if quiet == "none":
        schedule["quiet_hours"] = ""
    elif quiet == "custom":
        schedule["quiet_hours"] = _text(form, "quiet_hours", 20)
    raw["schedule"] = schedule
    for key in ("marketer", "error_threshold"):
        if (before or {}).get(key) is not None:
            raw[key] = before[key]  # type: ignore[index]
    return raw


def from_spec(spec: Mapping[str, Any]) -> dict[str, str]:
    """A stored campaign's spec as the form's fields (texts the template puts back)."""
    values: dict[str, str] = {"name": str(spec.get("name", "")),
                              "segment": str(spec.get("segment", ""))}
    for slot, channel in zip(("ch1", "ch2", "ch3"), spec.get("channels", []), strict=False):
        values[slot] = str(channel)
    for variant in spec.get("variants", []):
        v = str(variant.get("name", "A"))
        if v != "A":
            values[f"{v}.on"] = "on"
        telegram = variant.get("telegram") or {}
        if telegram:
            values[f"{v}.telegram.text"] = str(telegram.get("text", ""))
            for i, button in enumerate(telegram.get("buttons", [])[:BUTTONS]):
                values[f"{v}.telegram.b{i}.text"] = str(button.get("text", ""))
                values[f"{v}.telegram.b{i}.url"] = str(button.get("url", ""))
            if telegram.get("image_file"):
                values[f"{v}.telegram.keep_image"] = "on"
                values[f"{v}.telegram.image_name"] = str(
                    telegram["image_file"].get("filename") or "image")
        email = variant.get("email") or {}
        for key in ("subject", "text", "html"):
            if email.get(key):
                values[f"{v}.email.{key}"] = str(email[key])
        if (variant.get("sms") or {}).get("text"):
            values[f"{v}.sms.text"] = str(variant["sms"]["text"])
    ab = spec.get("ab") or {}
    if ab:
        values["ab.share"] = f"{float(ab.get('test_share', 0.2)) * 100:g}"
        values["ab.metric"] = str(ab.get("metric", "reply_rate"))
        values["ab.wait"] = str(ab.get("wait", "4h"))
    schedule = spec.get("schedule") or {}
    values["timezone"] = str(schedule.get("timezone", "UTC"))
    if schedule.get("at"):
        values["at"] = str(schedule["at"])[:16]  # "2026-04-01T10:00" (datetime-local)
    quiet = schedule.get("quiet_hours")
    values["quiet"] = "default" if quiet is None else "none" if quiet == "" else "custom"
    if quiet:
        values["quiet_hours"] = str(quiet)
    if spec.get("track_links", True):
        values["track_links"] = "on"
    return values


def blank(segment: str = "") -> dict[str, str]:
    """A new campaign's fields: by Telegram, then email, then SMS; links tracked."""
    return {"segment": segment, "ch1": "telegram", "ch2": "email", "ch3": "sms",
            "timezone": "UTC", "quiet": "default", "track_links": "on", "ab.share": "20",
            "ab.metric": "reply_rate", "ab.wait": "4h"}
