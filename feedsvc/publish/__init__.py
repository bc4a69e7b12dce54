"""Pushing changes outward: the outbox of WebSub pings and cache purges (websub, purge) and the static mirror (mirror)."""
