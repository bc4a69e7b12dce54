"""The import command and the shared upsert: idempotent, partial failures, older updates, slugs."""
import io
import json

from sqlalchemy import func, select

from feedsvc import store
from feedsvc.ingest import importer
from feedsvc.store import articles, slug_redirects
from feedsvc.web import db
from tests.support.apps import SITE_URL


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


def _stored(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(
            select(articles.c.id, articles.c.slug, articles.c.status, articles.c.published, articles.c.article,
                   articles.c.record).order_by(articles.c.id))]


def test_parsing_in_worker_processes_stores_exactly_what_one_process_does(engine, tmp_path, make_record, make_app):
    # Workers hand the writer each article as its two JSON texts (ingest.write.Incoming.__reduce__): the
    # rebuilt article, the derived-slug collision and the refusals must all come out the same.
    lines = [make_record(id=f"rec-{n}", title=f"मानसून सत्र {n % 3}", slug=None) for n in range(40)]
    lines[5] = make_record(id="rec-5", title="")                    # refused: empty title
    lines[9] = dict(lines[8])                                         # refused: duplicate id
    source = tmp_path / "mixed.jsonl"
    source.write_text("\n".join(json.dumps(r, ensure_ascii=n % 2 == 0) for n, r in enumerate(lines)) + "\n{oops\n",
                      "utf-8")
    other = db.engine(make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'inline.db'}"))
    reports = [importer.import_files(e, [source], site_url=SITE_URL, site_name="s", workers=w)
               for e, w in ((engine, 2), (other, 0))]
    assert [(r.created, len(r.errors)) for r in reports] == [(38, 3), (38, 3)]
    assert [str(e) for e in reports[0].errors] == [str(e) for e in reports[1].errors]
    assert _stored(engine) == _stored(other)
    assert len({row[1] for row in _stored(engine)}) == 38  # colliding derived slugs got suffixes


def test_a_batch_redone_one_record_at_a_time_stores_what_workers_parsed_whole(engine, tmp_path, make_record,
                                                                             make_app, monkeypatch):
    # A worker sends the writer only the record fields it reads (ingest.write.Incoming.__reduce__); when
    # another writer interferes and the batch is redone record by record, each must still be stored with
    # its whole record, its derived slug, status and video flag, as a single process stores them.
    video = {"provider": "youtube", "url": "https://www.youtube.com/embed/dQw4w9WgXcQ", "title": "वीडियो"}
    lines = [make_record(id=f"rec-{n}", title=f"मानसून सत्र {n % 3}", slug=None,
                         **({"embeds": [video]} if n % 4 == 0 else {})) for n in range(12)]
    lines[3].update(published="2099-01-01T09:00:00+05:30", updated="2099-01-01T09:00:00+05:30")  # stored scheduled
    source = tmp_path / "batch.jsonl"
    source.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in lines) + "\n", "utf-8")
    real_upsert_many, interfered = importer.upsert_many, []

    def interfering(conn, batch, **kwargs):
        outcomes = real_upsert_many(conn, batch, **kwargs)   # derived slugs suffixed, then rolled back
        if len(batch) > 1 and not interfered:
            interfered.append(len(batch))
            raise importer.ConcurrentWrite("another writer")
        return outcomes

    monkeypatch.setattr(importer, "upsert_many", interfering)
    redone = importer.import_files(engine, [source], site_url=SITE_URL, site_name="s", workers=2)
    monkeypatch.undo()
    other = db.engine(make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'inline.db'}"))
    importer.import_files(other, [source], site_url=SITE_URL, site_name="s", workers=0)
    assert interfered == [12] and redone.created == 12
    assert _stored(engine) == _stored(other)
    assert [json.loads(row[-1]) for row in _stored(engine)] == sorted(lines, key=lambda r: r["id"])
    with engine.connect() as conn:
        flagged = conn.execute(select(articles.c.id).where(articles.c.has_video).order_by(articles.c.id)).scalars()
        assert list(flagged) == ["rec-0", "rec-4", "rec-8"]


def test_reimport_of_a_record_stored_in_another_json_layout_is_unchanged(runner, engine, tmp_path, make_record):
    # Records stored before the canonical layout (or by hand) compare by content, not by text.
    path = write(tmp_path, "a.json", make_record())
    runner.invoke(args=["import-articles", str(path)])
    with engine.begin() as conn:
        conn.execute(articles.update().values(record=json.dumps(make_record(), indent=2)))
    again = runner.invoke(args=["import-articles", str(path)])
    assert "unchanged 1" in again.output, again.output


def test_import_stores_the_good_records_of_a_batch_with_unrenderable_values(runner, engine, tmp_path, make_record):
    # A year-1 date with an offset once aborted the whole import with an OverflowError, storing none.
    records = [make_record(id="good", slug="good"),
               make_record(id="year-one", slug="year-one", published="0001-01-01T00:00:00+05:30"),
               make_record(id="bad-host", slug="bad-host", image={"url": "http://[::1/x.jpg"}),
               make_record(id="good-2", slug="good-2")]
    write(tmp_path, "batch.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n")
    result = runner.invoke(args=["import-articles", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert count(engine) == 2
    assert "batch.jsonl:2: published:" in result.output and "batch.jsonl:3: image.url:" in result.output


def test_chunked_body_over_the_limit_is_413_even_when_its_json_ends_early(app, client, api_headers, engine,
                                                                           make_record):
    # Without a Content-Length the body was read up to the limit, and a record followed by
    # megabytes of padding was stored from the part that fitted.
    record = make_record()
    limit = app.config["MAX_CONTENT_LENGTH"]
    body = json.dumps(record).encode() + b" " * limit
    response = client.put(f"/api/articles/{record['id']}", input_stream=io.BytesIO(body),
                          headers={**api_headers, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                          environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413 and str(limit) in response.get_json()["error"]
    assert count(engine) == 0
    small = client.put(f"/api/articles/{record['id']}", input_stream=io.BytesIO(json.dumps(record).encode()),
                       headers={**api_headers, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})
    assert small.status_code == 201 and count(engine) == 1


def test_api_refuses_a_year_one_date_with_422_naming_the_field(client, api_headers, make_record):
    record = make_record(published="0001-01-01T00:00:00+05:30", updated="0001-01-01T00:00:00+05:30")
    response = client.put(f"/api/articles/{record['id']}", json=record, headers=api_headers)
    assert response.status_code == 422
    assert {p["field"] for p in response.get_json()["problems"]} == {"published", "updated"}
