"""WSGI middleware: each piece a small class wrapping the app (as Werkzeug's middleware/)."""
