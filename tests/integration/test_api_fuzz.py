"""Property-based run of schemathesis against /openapi.json: no 500s, no schema violations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Api


@pytest.mark.timeout(300)
def test_openapi_fuzz_finds_no_server_error_or_schema_violation(api: Api, tmp_path: Path) -> None:
    token = api.admin.headers["Authorization"].split()[1]
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [
            str(st),
            "run",
            f"{api.base_url}/openapi.json",
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
        ],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    print(report)
    assert result.returncode == 0, report
