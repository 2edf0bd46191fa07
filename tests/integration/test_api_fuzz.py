"""Property-based run of schemathesis against /openapi.json: no 500s, no schema violations.

The per-agent rate limit is off for this run (otherwise most cases would only meet 429s) and
NUL bytes are explicitly in the generated strings; ``test_input_boundary.py`` adds hostile
values schemathesis does not make (lone surrogates, deep nesting, NaN, extreme dates).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ordinaut.config import Settings
from tests.integration.conftest import serve
from tests.support import bootstrap_admin


@pytest.mark.timeout(300)
def test_openapi_fuzz_finds_no_server_error_or_schema_violation(
    settings: Settings, tmp_path: Path
) -> None:
    token = bootstrap_admin(settings)
    st = Path(sys.executable).with_name("st")
    with serve(settings.model_copy(update={"rate_limit_per_minute": 0})) as base_url:
        result = run_schemathesis(st, base_url, token, tmp_path)
    report = result.stdout[-6000:] + result.stderr[-2000:]
    print(report)
    assert result.returncode == 0, report


def run_schemathesis(
    st: Path, base_url: str, token: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(st),
            "run",
            f"{base_url}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance",
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            os.environ.get("ORDINAUT_FUZZ_EXAMPLES", "15"),
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",
            "1",
            "--seed",
            "1",
            "--exclude-path",
            "/health",
            "--exclude-path",
            "/ready",  # 503 by design here too: no beat, no workers
            # a Server-Sent Events stream never ends (test_input_boundary says why it is safe)
            "--exclude-path",
            "/events/stream",
            "--generation-allow-x00",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,
    )
