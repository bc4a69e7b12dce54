"""Test helpers, loaded as pytest plugins by tests/conftest.py: apps, records, live servers, browsers.

Test modules import helpers from here, never from one another.
"""
