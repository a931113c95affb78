"""Error codes read the same everywhere: in reports, on the command line and in Python strings."""

from __future__ import annotations

import pytest

from framescan.errors import ERROR_BY_CODE, ErrorCode


@pytest.mark.parametrize("code", list(ErrorCode))
def test_error_code_formats_as_its_value(code: ErrorCode) -> None:
    assert f"{code}" == str(code) == code.value
    assert f"[{code}]" == f"[{code.value}]"


def test_raised_error_code_formats_as_its_value() -> None:
    ex = ERROR_BY_CODE[ErrorCode.NOT_FOUND]("x: no such file")
    assert f"{ex.code}" == "NOT_FOUND" and ex.to_dict()["code"] == "NOT_FOUND"
