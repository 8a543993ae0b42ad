"""The test suite, laid out like the package; shared helpers in helpers.py, fixtures in conftest.py."""
