"""The id authority: the host every guid and Atom id is minted under (tag:<authority>,2025:...).

Fixed once per store, in store_settings, at `flask init-db` or the first document built: then
FEEDSVC_ID_AUTHORITY if set, else the host of the SITE_URL of that moment — so a store that
published ids before this existed keeps them, and a later FEEDSVC_SITE_URL (a new domain, another
port) changes every link but no id. A different FEEDSVC_ID_AUTHORITY afterwards is ignored, with
a warning: readers would see every item as new.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask

from feedsvc import store
from feedsvc.web import db

SETTING = "id_authority"
_FIXED = "ID_AUTHORITY_FIXED"


def wanted(config) -> str:
    """The authority this configuration would choose for a store that has none yet."""
    return config["ID_AUTHORITY"] or (urlsplit(config["SITE_URL"]).hostname or "localhost").lower()


def fix(app: Flask) -> str:
    """The store's id authority, recorded now if it has none; the app's config then carries it."""
    if app.config.get(_FIXED):
        return app.config["ID_AUTHORITY"]
    asked = wanted(app.config)
    with db.engine(app).begin() as conn:
        fixed = store.fixed_setting(conn, SETTING, asked)
    if app.config["ID_AUTHORITY"] and fixed != asked:
        app.logger.warning("FEEDSVC_ID_AUTHORITY=%s ignored: this store mints its ids under %s since its first "
                           "start, and changing them would show every item as new", asked, fixed)
    app.config.update({"ID_AUTHORITY": fixed, _FIXED: True})
    return fixed
