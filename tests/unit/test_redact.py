"""Redaction: configured secret values, in their common encodings, out of text, data and logs."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest

from ordinaut.tools import redact

SECRET = 'tok-3f9A"b/c+d=é&k'  # quote, slash, plus, equals, non-ASCII, ampersand
ENV = {
    "ORDINAUT_SECRET_TELEGRAM_TOKEN": SECRET,
    "ORDINAUT_LLM_API_KEY": "sk-llm-0123456789",
    "ORDINAUT_SECRET_SHORT": "abc",  # too short to redact
    "HOME": "/root",
}
MARK = "[redacted:TELEGRAM_TOKEN]"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    "reflected",
    [
        SECRET,
        f"Bearer {SECRET}",
        json.dumps({"auth": SECRET}),  # JSON-escaped quote
        json.dumps({"auth": SECRET}, ensure_ascii=True),  # and \\u00e9
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        SECRET.encode().hex(),
        SECRET.encode().hex().upper(),
        b64(SECRET.encode()),
        b64(SECRET.encode()).rstrip("="),
        base64.urlsafe_b64encode(SECRET.encode()).decode(),
        b64(f"user:{SECRET}".encode()),  # Basic auth: the secret inside a longer base64
        b64(f"usr:{SECRET}".encode()),
        b64(f"us:{SECRET}:x".encode()),
    ],
    ids=[
        "raw",
        "bearer",
        "json",
        "json-ascii",
        "url",
        "url-path",
        "url-plus",
        "hex",
        "HEX",
        "base64",
        "base64-unpadded",
        "base64url",
        "basic-0",
        "basic-1",
        "basic-2",
    ],
)
def test_every_encoding_is_redacted(reflected: str) -> None:
    redactor = redact.redactor_for(ENV)
    out = redactor.text(f"upstream said: {reflected} (end)")
    assert "[redacted:TELEGRAM_TOKEN]" in out
    for form in redact.encodings(SECRET):
        if len(form) >= redact.MIN_FRAGMENT_CHARS:
            assert form not in out
    assert "tok-3f9A" not in out


def test_the_llm_key_is_a_secret_and_short_values_are_not() -> None:
    redactor = redact.redactor_for(ENV)
    assert redactor.text("key sk-llm-0123456789") == "key [redacted:LLM_API_KEY]"
    assert redactor.text("abc abc") == "abc abc"
    assert redact.secret_values({"ORDINAUT_SECRET_EMPTY": ""}) == {}


def test_values_are_walked_keys_included_and_untouched_parts_shared() -> None:
    redactor = redact.redactor_for(ENV)
    clean = {"n": [1, 2.5, None, True], "s": "fine"}
    value = {"clean": clean, "list": [SECRET, {"k": f"x{SECRET}y"}], SECRET: 1}
    out = redactor.value(value)
    assert out == {
        "clean": clean,
        "list": [MARK, {"k": f"x{MARK}y"}],
        MARK: 1,
    }
    assert out["clean"] is clean  # nothing to redact: not copied
    assert redactor.value(clean) is clean
    assert redact.redactor_for({}).value(value) is value


def test_bounded_redacts_before_it_cuts() -> None:
    redactor = redact.redactor_for(ENV)
    # a secret straddling the cut: neither half may survive
    text = "x" * 95 + SECRET + "y" * 10_000
    out = redactor.bounded(text, 100)
    assert len(out) < 200 and "cut" in out and "tok-3f" not in out
    # a very long text, secret just past the pre-cut: dropped, never shown in part
    text = "z" * (2 * 100 - 5) + SECRET + "z" * 500
    out = redactor.bounded(text, 100)
    assert "tok" not in out


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("ordinaut.test_redact")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    assert redact.install_log_redaction(ENV)
    try:
        yield stream
    finally:
        redact.install_log_redaction({})  # the factory stays, redacting nothing
        logger.removeHandler(handler)


def test_log_records_are_redacted_in_message_arguments_and_tracebacks(
    log_output: io.StringIO,
) -> None:
    logger = logging.getLogger("ordinaut.test_redact")
    logger.info("token in the message: " + SECRET)
    logger.info("token as an argument: %s and %r", SECRET, {"h": b64(SECRET.encode())})
    try:
        raise RuntimeError(f"upstream echoed {quote(SECRET, safe='')}")
    except RuntimeError:
        logger.exception("call failed")
    logger.info("mapping %(x)s", {"x": SECRET})
    text = log_output.getvalue()
    assert text.count(MARK) == 5, text
    assert "tok-3f9A" not in text and quote(SECRET, safe="") not in text
    assert "RuntimeError" in text  # the traceback is still there


def test_logging_after_uninstall_is_untouched(log_output: io.StringIO) -> None:
    redact.install_log_redaction({})
    logging.getLogger("ordinaut.test_redact").info("plain %s", "text")
    assert log_output.getvalue() == "INFO plain text\n"
