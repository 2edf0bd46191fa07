"""Secret values out of everything Ordinaut stores, emits or logs.

The secrets are the values of every ``ORDINAUT_SECRET_<NAME>`` variable (see
:mod:`ordinaut.tools.secrets`), ``ORDINAUT_LLM_API_KEY`` and ``ORDINAUT_ADMIN_TOKEN`` in the
process environment. Each is looked for as it is and in the encodings an upstream is likely
to reflect it in: JSON-escaped, URL-encoded (``quote`` and ``quote_plus``), hex (either
case), and base64 (standard and URL-safe alphabets, padded or not, and also as the run of
characters it always becomes inside a longer base64 text, such as ``user:secret`` in a Basic
header, at any of the three byte alignments). Every occurrence becomes ``[redacted:NAME]``.

Values shorter than :data:`MIN_SECRET_CHARS` are left alone (they would match ordinary
text), and base64 runs inside longer text count only from :data:`MIN_FRAGMENT_CHARS`.

Where it applies: step receipts (input, output, error), a run's output and error, events
(a run's events, ``POST /events`` payloads, and every entry the relay appends to the
stream), error snippets of HTTP answers (before they are cut, so no half secret survives a
cut), and the log records of worker and API processes (:func:`install_log_redaction`).
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from ordinaut.tools import secrets

MIN_SECRET_CHARS = 6
MIN_FRAGMENT_CHARS = 8
OTHER_SECRETS = {"ORDINAUT_LLM_API_KEY": "LLM_API_KEY", "ORDINAUT_ADMIN_TOKEN": "ADMIN_TOKEN"}


def secret_values(environ: Mapping[str, str]) -> dict[str, str]:
    """Every configured secret, by name (``TELEGRAM_TOKEN``, ``LLM_API_KEY``), non-empty only."""
    # keys first: reading every value of os.environ decodes it, once per run otherwise
    names = [name for name in environ if name.startswith(secrets.PREFIX)]
    found = {name.removeprefix(secrets.PREFIX): environ[name] for name in names if environ[name]}
    for variable, name in OTHER_SECRETS.items():
        if environ.get(variable):
            found[name] = environ[variable]
    return found


def encodings(value: str) -> set[str]:
    """``value`` and the forms it takes when an upstream encodes it (see the module docstring)."""
    raw = value.encode("utf-8", "surrogatepass")
    forms = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        raw.hex(),
        raw.hex().upper(),
    }
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        forms |= {whole, whole.rstrip("=")}
        for shift in range(3):
            # the characters that depend only on the secret's bits, whatever surrounds it
            coded = encode(b"\0" * shift + raw).decode()
            start, end = -(-8 * shift // 6), 8 * (shift + len(raw)) // 6
            if end - start >= MIN_FRAGMENT_CHARS:
                forms.add(coded[start:end])
    return {form for form in forms if form}


@dataclass(frozen=True)
class Redactor:
    """Replaces secret values (and their encodings) in text and in JSON-like values."""

    # (needle, replacement), longest needle first, so an encoding is replaced before a
    # shorter form that it contains
    needles: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.needles)

    @property
    def longest(self) -> int:
        """Length of the longest needle (0 when there is none)."""
        return len(self.needles[0][0]) if self.needles else 0

    def text(self, text: str) -> str:
        """``text`` with every secret replaced (the same object when there is none in it)."""
        for needle, mark in self.needles:
            if needle in text:
                text = text.replace(needle, mark)
        return text

    def value(self, value: Any) -> Any:
        """A JSON-like value with every string (keys too) redacted; unchanged parts are shared."""
        if not self.needles:
            return value
        return self._walk(value)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            pairs = [
                (self.text(k) if isinstance(k, str) else k, self._walk(v)) for k, v in value.items()
            ]
            same = all(
                k is k0 and v is v0 for (k, v), (k0, v0) in zip(pairs, value.items(), strict=True)
            )
            return value if same else dict(pairs)
        if isinstance(value, (list, tuple)):
            items = [self._walk(item) for item in value]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
        return value

    def bounded(self, text: str, limit: int) -> str:
        """``text`` redacted and cut to ``limit`` characters, with a note of what was cut.

        A very long text is cut once before it is redacted (redacting 100 MB to keep 4 kB
        would be waste), dropping the stretch where a secret may have been cut in half.
        """
        length = len(text)
        if length > 2 * limit:
            text = text[: max(2 * limit - self.longest, 0)]
        text = self.text(text)
        if len(text) > limit:
            return f"{text[:limit]}… ({length} characters, cut)"
        return text


@functools.lru_cache(maxsize=8)
def _redactor(items: tuple[tuple[str, str], ...]) -> Redactor:
    needles: dict[str, str] = {}
    for name, value in items:
        if len(value) < MIN_SECRET_CHARS:
            continue
        for form in encodings(value):
            needles.setdefault(form, f"[redacted:{name}]")
    ordered = sorted(needles.items(), key=lambda pair: (-len(pair[0]), pair[0]))
    return Redactor(tuple(ordered))


def redactor_for(environ: Mapping[str, str]) -> Redactor:
    """The Redactor for the secrets configured in ``environ`` (cached by their values)."""
    return _redactor(tuple(sorted(secret_values(environ).items())))


# --- logs -----------------------------------------------------------------------------------


def _redact_arg(arg: Any, redactor: Redactor) -> Any:
    if isinstance(arg, str):
        return redactor.text(arg)
    if arg is None or isinstance(arg, (bool, int, float)):
        return arg
    text = str(arg)
    redacted = redactor.text(text)
    return arg if redacted is text else redacted


def redact_record(record: logging.LogRecord, redactor: Redactor) -> logging.LogRecord:
    """``record`` with its message, arguments, traceback and stack redacted (in place)."""
    if isinstance(record.msg, str):
        record.msg = redactor.text(record.msg)
    elif record.msg is not None:
        record.msg = _redact_arg(record.msg, redactor)
    if isinstance(record.args, Mapping):
        record.args = {k: _redact_arg(v, redactor) for k, v in record.args.items()}
    elif record.args:
        record.args = tuple(_redact_arg(arg, redactor) for arg in record.args)
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        # what logging.Formatter.formatException would write; formatters use exc_text if set
        lines = traceback.format_exception(*record.exc_info)
        record.exc_text = redactor.text("".join(lines).rstrip("\n"))
    if record.stack_info:
        record.stack_info = redactor.text(record.stack_info)
    return record


_installed: list[Redactor] = []


def install_log_redaction(environ: Mapping[str, str]) -> bool:
    """Redact the secrets of ``environ`` from every log record this process makes from now on.

    It wraps the log record factory, so it covers every logger and handler (Celery's and
    uvicorn's too). Called again, it uses the secrets of the latest call. Returns whether
    there was anything to redact.
    """
    redactor = redactor_for(environ)
    if _installed:
        _installed[0] = redactor
        return bool(redactor)
    _installed.append(redactor)
    make: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        current = _installed[0]
        return redact_record(record, current) if current else record

    logging.setLogRecordFactory(factory)
    return bool(redactor)


__all__ = [
    "MIN_FRAGMENT_CHARS",
    "MIN_SECRET_CHARS",
    "Redactor",
    "encodings",
    "install_log_redaction",
    "redact_record",
    "redactor_for",
    "secret_values",
]
