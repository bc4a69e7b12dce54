"""Query plans, for tests that a listing walks an index in order instead of sorting."""
from sqlalchemy import text


def ordered_index_plan(conn, query) -> str:
    """The plan a query gets when an ordered index walk is possible at all (see the comment below)."""
    compiled = query.compile(conn.engine, compile_kwargs={"literal_binds": True})
    if conn.dialect.name == "sqlite":
        return "\n".join(row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    # A few hundred rows are cheaper to sort than to walk in index order, so PostgreSQL would rightly
    # sort here; forbidding sorts and scans asks whether an ordered index plan exists at all.
    # The benchmark shows the plans the planner picks by itself at 1,000,000 rows.
    for setting in ("enable_sort", "enable_seqscan", "enable_bitmapscan"):
        conn.execute(text(f"SET LOCAL {setting} = off"))
    return "\n".join(row[0] for row in conn.execute(text(f"EXPLAIN {compiled}")))
