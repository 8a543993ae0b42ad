"""Tests of the commands as a user runs them: --help, the console, the notebook, end to end."""
