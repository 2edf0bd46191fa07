"""A schedule in words for people: "weekdays at 08:30 Europe/Chisinau"; pure.

Common shapes get a sentence (cron with fixed minute and hour, day-of-week lists and ranges,
``*/N`` steps; RRULEs of FREQ DAILY/WEEKLY/HOURLY/MINUTELY with BYDAY/BYHOUR/BYMINUTE;
``once``; event topics). Anything else is shown as written, with its kind: a sentence that
might mislead is worse than the expression.
"""

from __future__ import annotations

import re

DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_RRULE_DAYS = {"SU": 0, "MO": 1, "TU": 2, "WE": 3, "TH": 4, "FR": 5, "SA": 6}
_WEEKDAYS = frozenset({1, 2, 3, 4, 5})
_NUMBER = re.compile(r"\d{1,2}")


def describe(kind: str, expr: str | None, tz: str) -> str:
    """The schedule as a short phrase, ending with its zone where times are local."""
    text = (expr or "").strip()
    if kind == "once":
        return f"once, at {text.replace('T', ' ')}" + ("" if _has_offset(text) else f" {tz}")
    if kind == "event":
        return f"when event {text} is published"
    if kind == "condition":
        return f"when {text} holds"
    phrase = _cron(text) if kind == "cron" else _rrule(text) if kind == "rrule" else None
    return f"{phrase} {tz}" if phrase else f"{kind}: {text}"


def _has_offset(text: str) -> bool:
    return text.endswith("Z") or bool(re.search(r"[+-]\d{2}:?\d{2}$", text))


def _days(numbers: set[int]) -> str | None:
    if not numbers or numbers == set(range(7)):
        return None
    if numbers == _WEEKDAYS:
        return "weekdays"
    if numbers == {0, 6}:
        return "weekends"
    names = [DAYS[n].capitalize() + "s" for n in sorted(numbers, key=lambda n: (n - 1) % 7)]
    return ", ".join(names)


def _at(hour: int, minute: int) -> str:
    return f"at {hour:02d}:{minute:02d}"


def _cron(text: str) -> str | None:
    fields = text.split()
    if len(fields) != 5:
        return None
    minute, hour, dom, month, dow = fields
    if dom != "*" or month != "*":
        return None
    days = _cron_days(dow)
    if days is False:
        return None
    when = ""
    if _NUMBER.fullmatch(minute) and _NUMBER.fullmatch(hour):
        when = _at(int(hour), int(minute))
    elif _NUMBER.fullmatch(minute) and hour == "*":
        when = f"every hour at :{int(minute):02d}"
    elif minute.startswith("*/") and minute[2:].isdigit() and hour == "*":
        when = f"every {int(minute[2:])} minutes"
    elif minute == "*" and hour == "*":
        when = "every minute"
    else:
        return None
    if days:
        return f"{days} {when}" if when.startswith("at") else f"{when} on {days}"
    return f"every day {when}" if when.startswith("at") else when


def _cron_days(dow: str) -> str | bool | None:
    """The day phrase (None for every day); False when the field is not a plain list/range."""
    if dow == "*":
        return None
    numbers: set[int] = set()
    for part in dow.split(","):
        if re.fullmatch(r"[0-7]-[0-7]", part):
            low, high = (int(x) % 7 if x == "7" else int(x) for x in part.split("-"))
            if low > high:
                return False
            numbers.update(range(low, high + 1))
        elif re.fullmatch(r"[0-7]", part):
            numbers.add(int(part) % 7)
        else:
            return False
    return _days(numbers)


def _rrule(text: str) -> str | None:
    lines = [line for line in text.splitlines() if line.strip()]
    rule = lines[-1].removeprefix("RRULE:") if lines else ""
    if any(not line.startswith(("RRULE:", "DTSTART")) for line in lines[:-1]):
        return None
    parts: dict[str, str] = {}
    for item in rule.split(";"):
        key, _, value = item.partition("=")
        parts[key.upper()] = value.upper()
    allowed = {"FREQ", "BYDAY", "BYHOUR", "BYMINUTE", "INTERVAL", "BYSECOND"}
    if not parts.keys() <= allowed or parts.get("BYSECOND", "0") != "0":
        return None
    freq, interval = parts.get("FREQ"), int(parts.get("INTERVAL", "1") or 1)
    days = set()
    for day in filter(None, parts.get("BYDAY", "").split(",")):
        if day not in _RRULE_DAYS:
            return None
        days.add(_RRULE_DAYS[day])
    hours, minutes = parts.get("BYHOUR", ""), parts.get("BYMINUTE", "")
    single = _NUMBER.fullmatch(hours) and _NUMBER.fullmatch(minutes)
    day_phrase = _days(days)
    if freq in ("DAILY", "WEEKLY") and single and interval == 1:
        when = _at(int(hours), int(minutes))
        if day_phrase:
            return f"{day_phrase} {when}"
        return f"every day {when}" if freq == "DAILY" and not days else None
    if freq == "HOURLY" and not hours and not days:
        every = "every hour" if interval == 1 else f"every {interval} hours"
        start = re.search(r"DTSTART[^:\n]*:\d{8}T\d{2}(\d{2})", text)
        minute = minutes or (start.group(1) if start else "")
        if not minute:  # from the task's creation time: the expression says no more
            return every
        return f"{every} at :{int(minute):02d}" if _NUMBER.fullmatch(minute) else None
    if freq == "MINUTELY" and not hours and not minutes and not days:
        return "every minute" if interval == 1 else f"every {interval} minutes"
    return None
