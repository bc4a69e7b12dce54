"""Pushing changes outward: WebSub pings (websub) and the static mirror (mirror)."""
