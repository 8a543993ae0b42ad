"""The test suite, laid out like the package; helpers in helpers.py, fixtures in conftest.py."""
