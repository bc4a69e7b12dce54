"""The import command and the shared upsert: idempotent, partial failures, older updates, slugs."""
import json

from sqlalchemy import func, select

from feedsvc import store
from feedsvc.store import articles, slug_redirects


def write(folder, name, record):
    path = folder / name
    path.write_text(json.dumps(record, ensure_ascii=False) if not isinstance(record, str) else record, "utf-8")
    return path


def count(engine):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(articles)).scalar_one()


def stored_title(engine, article_id):
    with engine.connect() as conn:
        return json.loads(store.article_row(conn, article_id).article)["title"]


def test_import_is_idempotent(runner, engine, tmp_path, make_record):
    write(tmp_path, "a.json", make_record())
    first = runner.invoke(args=["import-articles", str(tmp_path)])
    second = runner.invoke(args=["import-articles", str(tmp_path)])
    assert first.exit_code == 0 and second.exit_code == 0
    assert "created 1" in first.output and "unchanged 1" in second.output
    with engine.connect() as conn:
        assert store.article_row(conn, "test-2025-08-01-monsoon").version == 1
        assert store.scope_state_of(conn, "site").version == 1


def test_partly_bad_import_stores_good_and_reports_bad(runner, engine, tmp_path, make_record):
    write(tmp_path, "good.json", make_record())
    write(tmp_path, "naive.json", make_record(id="naive", slug="naive", published="2025-08-01T09:15:00"))
    write(tmp_path, "broken.json", '{"id": "broken", ')
    result = runner.invoke(args=["import-articles", str(tmp_path)])
    assert result.exit_code == 1
    assert count(engine) == 1
    assert "naive.json: published:" in result.output and "broken.json: (file): is not valid JSON" in result.output


def test_duplicate_ids_in_one_import_keep_the_first(runner, engine, tmp_path, make_record):
    write(tmp_path, "1.json", make_record(title="पहला"))
    write(tmp_path, "2.json", make_record(title="दूसरा"))
    result = runner.invoke(args=["import-articles", str(tmp_path)])
    assert result.exit_code == 1 and "appears twice" in result.output
    assert stored_title(engine, "test-2025-08-01-monsoon") == "पहला"


def test_older_update_does_not_overwrite(runner, engine, tmp_path, make_record):
    newer = make_record(title="नया शीर्षक", updated="2025-08-02T10:00:00+05:30")
    older = make_record(title="पुराना शीर्षक", updated="2025-08-01T12:00:00+05:30")
    assert runner.invoke(args=["import-articles", str(write(tmp_path, "new.json", newer))]).exit_code == 0
    result = runner.invoke(args=["import-articles", str(write(tmp_path, "old.json", older))])
    assert result.exit_code == 0 and "older than the stored" in result.output
    assert stored_title(engine, "test-2025-08-01-monsoon") == "नया शीर्षक"


def test_jsonl_import_reports_line_numbers(runner, engine, tmp_path, make_record):
    lines = [json.dumps(make_record(id=f"line-{i}", slug=f"line-{i}"), ensure_ascii=False) for i in range(3)]
    lines[1] = lines[1].replace('"national"', '"National Desk"')
    write(tmp_path, "bulk.jsonl", "\n".join(lines) + "\n")
    result = runner.invoke(args=["import-articles", str(tmp_path / "bulk.jsonl")])
    assert result.exit_code == 1 and "bulk.jsonl:2: section.key" in result.output
    assert count(engine) == 2


def test_changed_slug_leaves_a_redirect(runner, engine, tmp_path, make_record):
    runner.invoke(args=["import-articles", str(write(tmp_path, "a.json", make_record()))])
    renamed = make_record(slug="monsoon-session-day-one", updated="2025-08-01T11:00:00+05:30")
    runner.invoke(args=["import-articles", str(write(tmp_path, "a.json", renamed))])
    with engine.connect() as conn:
        row, redirected = store.article_by_slug(conn, "monsoon-session-begins")
        assert redirected and row.slug == "monsoon-session-day-one"
        assert conn.execute(select(func.count()).select_from(slug_redirects)).scalar_one() == 1


def test_explicit_slug_taken_by_another_article_is_refused(runner, engine, tmp_path, make_record):
    write(tmp_path, "a.json", make_record())
    write(tmp_path, "b.json", make_record(id="other"))
    result = runner.invoke(args=["import-articles", str(tmp_path)])
    assert result.exit_code == 1 and "already the slug of article" in result.output
    assert count(engine) == 1


def test_derived_slug_collision_gets_a_suffix(runner, engine, tmp_path, make_record):
    write(tmp_path, "a.json", make_record(slug=None))
    write(tmp_path, "b.json", make_record(id="other-id", slug=None))
    assert runner.invoke(args=["import-articles", str(tmp_path)]).exit_code == 0
    with engine.connect() as conn:
        rows = list(conn.execute(select(articles.c.slug, articles.c.article)))
    assert len({r.slug for r in rows}) == 2
    assert all(json.loads(r.article)["url"].endswith("/articles/" + r.slug) for r in rows)


def test_retagging_bumps_old_and_new_scopes(runner, engine, tmp_path, make_record):
    runner.invoke(args=["import-articles", str(write(tmp_path, "a.json", make_record()))])
    moved = make_record(tags=[{"key": "budget", "name": "बजट"}], updated="2025-08-01T11:00:00+05:30")
    runner.invoke(args=["import-articles", str(write(tmp_path, "a.json", moved))])
    with engine.connect() as conn:
        assert store.scope_state_of(conn, "tag:parliament").version == 2
        assert store.scope_state_of(conn, "tag:budget").version == 1
        assert store.newest(conn, "tag:parliament", 10) == []
        assert [a.id for a in store.newest(conn, "tag:budget", 10)] == ["test-2025-08-01-monsoon"]


def test_drafts_change_no_feed(runner, engine, tmp_path, make_record):
    runner.invoke(args=["import-articles", str(write(tmp_path, "a.json", make_record(status="draft")))])
    with engine.connect() as conn:
        assert store.scope_state_of(conn, "site") is None
        assert store.newest(conn, "site", 10) == []
