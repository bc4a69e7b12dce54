"""`flask validate` on local files it cannot take: too deeply nested, or too large, is a problem reported."""
from __future__ import annotations

from feedsvc.validate.command import MAX_FETCH_BYTES


def test_deeply_nested_json_is_a_reported_problem_not_a_traceback(runner, tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"version": "https://jsonfeed.org/version/1.1", "items": ' + "[" * 100_000 + "]" * 100_000 + "}")
    result = runner.invoke(args=["validate", str(path)])
    assert result.exit_code == 1 and not isinstance(result.exception, RecursionError)
    assert f"{path}:-: too-deep: nested too deeply" in result.output


def test_a_file_over_the_size_cap_is_refused_with_its_reason(runner, tmp_path):
    path = tmp_path / "big.xml"
    with path.open("wb") as handle:
        handle.truncate(MAX_FETCH_BYTES + 1)
    result = runner.invoke(args=["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:-: fetch: larger than {MAX_FETCH_BYTES:,} bytes; not validated" in result.output
