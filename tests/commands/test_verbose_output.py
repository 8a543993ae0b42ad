"""``--verbosity=1``: the traceback of a failure, TensorFlow's lines, not other libraries' debug."""

import logging as std_logging

from absl import flags, logging

from mnist_research import logs
from mnist_research.errors import RunDirError, run_guarded


def _at_verbosity(verbosity, body):
    """``body()`` after ``logs.configure(verbosity)``; the logging setup put back after it."""
    handler = logging.get_absl_handler()
    root = std_logging.getLogger()
    saved = (
        handler.formatter,
        list(handler.filters),
        handler in root.handlers,
        logging.get_verbosity(),
        root.level,
        {name: std_logging.getLogger(name).level for name in ("matplotlib", "PIL", "tensorflow")},
    )
    was_parsed = flags.FLAGS.is_parsed()
    try:
        logs.configure(verbosity)
        return body()
    finally:
        formatter, filters, attached, level, root_level, library_levels = saved
        logging.set_verbosity(level)
        handler.setFormatter(formatter)
        handler.filters[:] = filters
        if not attached:
            root.removeHandler(handler)  # configure() put it there
        root.setLevel(root_level)
        for name, library_level in library_levels.items():
            std_logging.getLogger(name).setLevel(library_level)
        if not was_parsed:
            flags.FLAGS.unparse_flags()


def _fail():
    raise RunDirError("the run directory is damaged")


def test_a_failure_logs_its_own_traceback_at_verbosity_1(capsys, caplog):
    with caplog.at_level(std_logging.DEBUG):
        status = _at_verbosity(1, lambda: run_guarded(_fail))
    assert status == 1
    assert capsys.readouterr().err == "error: the run directory is damaged\n"
    (record,) = [r for r in caplog.records if r.getMessage() == "Traceback"]
    assert record.exc_info is not None and record.exc_info[0] is RunDirError
    assert "in _fail" in caplog.text and "NoneType: None" not in caplog.text


def test_no_traceback_at_the_default_verbosity(capsys, caplog):
    with caplog.at_level(std_logging.DEBUG):
        assert _at_verbosity(0, lambda: run_guarded(_fail)) == 1
    assert capsys.readouterr().err == "error: the run directory is damaged\n"
    assert "Traceback" not in caplog.text


def test_verbosity_1_opens_tensorflow_but_not_matplotlib_font_debug():
    def levels():
        return (
            std_logging.getLogger("tensorflow").isEnabledFor(std_logging.DEBUG),
            std_logging.getLogger("matplotlib.font_manager").isEnabledFor(std_logging.DEBUG),
            std_logging.getLogger("PIL.PngImagePlugin").isEnabledFor(std_logging.DEBUG),
            std_logging.getLogger("matplotlib.font_manager").isEnabledFor(std_logging.INFO),
        )

    assert _at_verbosity(1, levels) == (True, False, False, True)


def test_a_level_someone_set_on_matplotlib_is_kept():
    matplotlib_logger = std_logging.getLogger("matplotlib")
    saved = matplotlib_logger.level
    try:
        matplotlib_logger.setLevel(std_logging.DEBUG)  # e.g. matplotlib.set_loglevel("debug")
        assert _at_verbosity(0, lambda: matplotlib_logger.level) == std_logging.DEBUG
        matplotlib_logger.setLevel(std_logging.NOTSET)
        assert _at_verbosity(0, lambda: matplotlib_logger.level) == std_logging.INFO
    finally:
        matplotlib_logger.setLevel(saved)
