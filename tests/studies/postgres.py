"""A throwaway PostgreSQL server on 127.0.0.1 for the tests of studies shared through a database.

Debian's ``postgresql`` package (``.ci/run`` installs it) puts ``initdb`` and
``pg_ctl`` under ``/usr/lib/postgresql/<version>/bin``; the server refuses to run as
root, so as root the cluster belongs to ``nobody``.
"""

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator


def binaries() -> str | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or ``None`` when PostgreSQL is absent."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    return os.path.dirname(found[-1]) if found[-1] else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(bindir: str) -> Iterator[str]:
    """Starts a cluster in a temporary folder; yields its SQLAlchemy URL; stops and deletes it."""
    folder = tempfile.mkdtemp(prefix="mnist_research-pg-")
    as_user: list[str] = []
    if os.geteuid() == 0:
        os.chmod(folder, 0o755)
        shutil.chown(folder, "nobody", "nogroup")
        as_user = ["runuser", "-u", "nobody", "--"]
    data, port = os.path.join(folder, "data"), _free_port()

    def run(*argv: str) -> None:
        subprocess.run(as_user + list(argv), check=True, capture_output=True, timeout=120)

    try:
        run(os.path.join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder}"
        log = os.path.join(folder, "server.log")
        run(os.path.join(bindir, "pg_ctl"), "-D", data, "-o", options, "-l", log, "-w", "start")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            run(os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)
