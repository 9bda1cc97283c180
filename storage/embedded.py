"""Embedded PostgreSQL server for development and tests.

Curbe Chat talks to PostgreSQL through asyncpg. When no ``DATABASE_URL`` is
configured (``make serve``, the test suite) we run a private PostgreSQL 16
server from the binaries bundled in the ``pgserver`` wheel, so that nobody has
to install or configure a database to try the project.

Only pgserver's *binaries* are used. Its Python API shares one server between
processes and only stops it from an ``atexit`` hook, when the last process
using it exits. We want a server whose lifetime is owned by exactly one
:class:`EmbeddedPostgres` handle instead, so this module runs ``initdb`` and
``postgres`` itself:

* The data directory is created (and initialised with ``initdb``) if needed;
  an existing one is reused, keeping its data.
* ``postgres`` runs as a direct child process in its own session (so a
  Ctrl-C in the terminal reaches only our process, which then shuts the
  database down in order). Being its parent, we can ``wait()`` for it, which
  also works in containers whose PID 1 never reaps orphans.
* The server listens on a Unix-domain socket only (no TCP port, so no port
  clashes) with ``trust`` authentication for the ``postgres`` role. The
  socket lives in the data directory, or in a short private directory under
  ``/tmp`` when the data directory's path is too long for a socket address.
* :meth:`EmbeddedPostgres.stop` performs a "fast" shutdown and waits until the
  postmaster has exited; it is also registered with :mod:`atexit`.
* The process that started the server is its *owner*. It is recorded in
  ``curbe-owner.json`` in the data directory (pid, process start time, socket
  directory, URL), removed again by :meth:`~EmbeddedPostgres.stop`. While the
  owner lives, other processes never stop the server: ``curbe-chat serve``
  owns the server, and admin commands run at the same time in another
  terminal *attach* to it (:func:`attach_or_start_embedded_postgres`), while
  :func:`start_embedded_postgres` refuses to start. Only an orphaned server,
  whose owner died without stopping it (``kill -9``), is shut down and
  replaced by the next start on the same data directory.
* Starting, attaching and stopping are serialised between processes by an
  exclusive ``flock`` on the data directory itself, so a process never sees
  a server that another one is still starting or stopping.
* PostgreSQL refuses to run as root. When we are root a system user
  ``pgserver`` (the same one the pgserver library uses) is created if needed;
  the data directory is chowned to it, and the directories above the data
  directory get the "search" (``o+x``) permission so that user can reach it.

The API is synchronous: it is meant to be called before the Trio event loop
starts (or from a worker thread).

Example:
    >>> with embedded_postgres(".curbe-data") as pg:  # doctest: +SKIP
    ...     run_app(database_url=pg.url)  # e.g. ``serve``: owns the server
    >>> with embedded_postgres(".curbe-data", attach=True) as pg:  # doctest: +SKIP
    ...     run_admin_command(pg.url)  # uses the server of a running ``serve``
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import pathlib
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator

import attrs
import psutil

__all__ = [
    "OWNER_FILE",
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "attach_or_start_embedded_postgres",
    "embedded_postgres",
    "postgres_bin_dir",
    "start_embedded_postgres",
]

_log = logging.getLogger(__name__)

#: System account used to run PostgreSQL when we are root (shared with pgserver).
SYSTEM_USER = "pgserver"
#: Database role (superuser) created by ``initdb`` and used in the URL.
DB_USER = "postgres"
#: Database name used in the URL.
DB_NAME = "postgres"
#: Port number; with Unix sockets it only determines the socket file name.
PORT = 5432
#: File in the data directory recording the process that owns the running server.
OWNER_FILE = "curbe-owner.json"

_SOCKET_NAME = f".s.PGSQL.{PORT}"
# sizeof(sockaddr_un.sun_path) is 108 on Linux and 104 on macOS; PostgreSQL
# needs the path plus a terminating NUL to fit, so stay within the smaller one.
_MAX_SOCKET_PATH_BYTES = 103
# Characters that PostgreSQL's unix_socket_directories list syntax treats specially.
_SOCKET_DIR_SPECIAL_CHARS = frozenset(',"\\')
_POLL_INTERVAL = 0.02
_DEFAULT_START_TIMEOUT = 60.0
_DEFAULT_STOP_TIMEOUT = 30.0
# Prefix of the private socket directories created under /tmp.
_SOCKET_DIR_PREFIX = "curbe-pg-"
# psutil computes a process's start time from the same kernel counters each
# time, so a recorded start time matches exactly; this only absorbs rounding.
_CREATE_TIME_TOLERANCE = 0.01


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL server could not be initialised, started or stopped."""


def _pg_install_dir() -> pathlib.Path:
    """Locates the PostgreSQL installation bundled in the pgserver package.

    The package is located without importing it: importing ``pgserver`` would
    set up its own process-sharing machinery, which we do not use.

    Returns:
        The ``pginstall`` directory holding ``bin/``, ``lib/`` and ``share/``.

    Raises:
        EmbeddedPostgresError: pgserver is not installed.
    """
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the 'pgserver' package (bundled PostgreSQL) is not installed")
    return pathlib.Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def postgres_bin_dir() -> pathlib.Path:
    """Returns the directory of the bundled PostgreSQL programs (``psql``, ``pg_dump``...).

    Returns:
        The ``bin`` directory of the PostgreSQL installation shipped with pgserver.

    Raises:
        EmbeddedPostgresError: pgserver is not installed.
    """
    return _pg_install_dir() / "bin"


@attrs.frozen
class _Account:
    """The system account PostgreSQL runs as, when it differs from ours."""

    name: str
    uid: int
    gid: int


@attrs.frozen
class EmbeddedPostgres:
    """Handle on a running embedded PostgreSQL server.

    Create instances with :func:`start_embedded_postgres`,
    :func:`attach_or_start_embedded_postgres` or :func:`embedded_postgres`,
    not directly.

    Attributes:
        data_dir: Absolute path of the PostgreSQL data directory.
        url: asyncpg/libpq-compatible DSN, e.g.
            ``postgresql://postgres@/postgres?host=/path/to/socket/dir&port=5432``.
        owned: True if this process started the server (and :meth:`stop`
            shuts it down); False for a handle attached to a server owned by
            another running process (or by another handle of this process),
            which :meth:`stop` leaves running.
    """

    data_dir: pathlib.Path
    url: str
    owned: bool = attrs.field(eq=False)
    _pid: int = attrs.field(alias="pid", repr=False, eq=False)
    _process: subprocess.Popen[bytes] | None = attrs.field(alias="process", repr=False, eq=False)
    _socket_dir: pathlib.Path = attrs.field(alias="socket_dir", repr=False, eq=False)
    _owns_socket_dir: bool = attrs.field(alias="owns_socket_dir", repr=False, eq=False)
    # The process that created the handle: a forked child inherits the handle
    # (and its atexit hook) but must not shut down its parent's server.
    _creator_pid: int = attrs.field(factory=os.getpid, init=False, repr=False, eq=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False, eq=False)
    _stopped: threading.Event = attrs.field(
        factory=threading.Event, init=False, repr=False, eq=False
    )

    @property
    def pid(self) -> int:
        """Process id of the postmaster (the main ``postgres`` process)."""
        return self._pid

    @property
    def socket_dir(self) -> pathlib.Path:
        """Directory holding the server's Unix-domain socket (the URL's ``host``)."""
        return self._socket_dir

    @property
    def socket_path(self) -> pathlib.Path:
        """Path of the server's Unix-domain socket file."""
        return self._socket_dir / _SOCKET_NAME

    def is_running(self) -> bool:
        """Tells whether the postmaster process is still alive.

        Returns:
            True until the server has exited (whoever stopped it).
        """
        if self._process is not None:
            return self._process.poll() is None
        return _is_postmaster_of(self._pid, self.data_dir)

    def stop(self, timeout: float = _DEFAULT_STOP_TIMEOUT) -> None:
        """Stops the server if this handle owns it, and waits until its processes have exited.

        Sends SIGINT ("fast" shutdown: open transactions are rolled back,
        clients disconnected, data flushed). If that does not finish within
        ``timeout`` seconds, escalates to SIGQUIT ("immediate" shutdown,
        crash recovery on next start) and finally SIGKILL. Then removes the
        owner record. Calling it again after the server stopped does nothing.

        On a handle that does not own the server (``owned`` is False) this
        only detaches: the server keeps running for its owner.

        Args:
            timeout: Seconds to wait for the fast shutdown.
        """
        proc = self._process
        if proc is None:
            _log.debug("detaching from embedded PostgreSQL (pid %d, %s)", self._pid, self.data_dir)
            return
        with self._lock:
            if self._stopped.is_set() or os.getpid() != self._creator_pid:
                return  # Already stopped, or a forked child: the server is the parent's.
            # Serialised with other processes attaching to or replacing the server.
            try:
                lock_fd: int | None = _lock_data_dir(self.data_dir, timeout)
            except (OSError, EmbeddedPostgresError) as exc:
                _log.warning(
                    "stopping PostgreSQL on %s without the data directory lock: %s",
                    self.data_dir,
                    exc,
                )
                lock_fd = None
            try:
                if proc.poll() is None:
                    _log.info("stopping embedded PostgreSQL (pid %d, %s)", proc.pid, self.data_dir)
                    _terminate_postmaster(proc, timeout)
                    _log.info("embedded PostgreSQL stopped (exit status %s)", proc.returncode)
                record = _read_owner_record(self.data_dir)
                if record is not None and record.names(os.getpid(), proc.pid):
                    _remove_owner_record(self.data_dir)
            finally:
                if lock_fd is not None:
                    os.close(lock_fd)
            if self._owns_socket_dir:
                shutil.rmtree(self._socket_dir, ignore_errors=True)
            if _running.get(self.data_dir) is self:
                del _running[self.data_dir]
            atexit.unregister(self.stop)
            self._stopped.set()


@attrs.frozen
class _OwnerRecord:
    """Contents of :data:`OWNER_FILE`: which process owns the server on a data directory.

    Attributes:
        owner_pid: Process that started the server.
        owner_create_time: Its start time (``psutil.Process.create_time()``),
            which tells it from a later process reusing the pid.
        postmaster_pid: The server's postmaster, or None while it is being
            launched.
        socket_dir: Directory of the server's Unix-domain socket.
        url: The server's URL.
    """

    owner_pid: int
    owner_create_time: float
    postmaster_pid: int | None
    socket_dir: str
    url: str

    def names(self, owner_pid: int, postmaster_pid: int) -> bool:
        """Tells whether the record says ``owner_pid`` owns the postmaster ``postmaster_pid``."""
        return self.owner_pid == owner_pid and self.postmaster_pid in (None, postmaster_pid)


@attrs.frozen
class _LiveServer:
    """A postmaster running on a data directory, as found on disk and in the process table.

    Attributes:
        pid: The postmaster.
        port: Its port (from ``postmaster.pid``).
        socket_dir: Its socket directory (from ``postmaster.pid``), or None.
        owner: The live process that owns it, or None if it is orphaned.
    """

    pid: int
    port: int
    socket_dir: pathlib.Path | None
    owner: psutil.Process | None


# Servers started (and not yet stopped) by this process, by data directory.
_running: dict[pathlib.Path, EmbeddedPostgres] = {}
_running_lock = threading.Lock()


def start_embedded_postgres(
    data_dir: str | os.PathLike[str], *, timeout: float = _DEFAULT_START_TIMEOUT
) -> EmbeddedPostgres:
    """Starts a private PostgreSQL server on ``data_dir``, owned by this process.

    Creates and initialises the data directory if needed (``initdb``, well
    under a second), otherwise reuses it with its data. Returns once the server
    accepts connections. The server is stopped by
    :meth:`EmbeddedPostgres.stop`, or at the latest when the interpreter
    exits normally.

    A server left running on ``data_dir`` by a process that has died is
    stopped first. A server whose owner is still running is never touched:
    this function raises instead (see :func:`attach_or_start_embedded_postgres`).

    Args:
        data_dir: Data directory, absolute or relative to the current
            directory. Parent directories are created as needed.
        timeout: Seconds to wait for the server to become ready (and, before
            that, for another process starting or stopping a server on
            ``data_dir``).

    Returns:
        A handle on the running server, with ``owned`` True.

    Raises:
        EmbeddedPostgresError: ``initdb`` failed, the server did not start,
            this process already runs a server on ``data_dir``, or another
            live process does.
    """
    return _open_server(data_dir, timeout=timeout, attach=False)


def attach_or_start_embedded_postgres(
    data_dir: str | os.PathLike[str], *, timeout: float = _DEFAULT_START_TIMEOUT
) -> EmbeddedPostgres:
    """Uses the server a live process runs on ``data_dir``, or else starts one.

    Meant for short commands (``curbe-chat tenant create``...) that may run
    while ``curbe-chat serve`` owns a server on the same data directory: if
    the server on ``data_dir`` belongs to a running process (this one
    included), returns a handle on it with ``owned`` False, whose
    :meth:`~EmbeddedPostgres.stop` leaves it running. Otherwise behaves like
    :func:`start_embedded_postgres` (replacing an orphaned server) and returns
    a handle that owns the new server.

    Args:
        data_dir: Data directory, see :func:`start_embedded_postgres`.
        timeout: Seconds to wait for the server to become ready.

    Returns:
        A handle on the running server.

    Raises:
        EmbeddedPostgresError: the server could not be started.
    """
    return _open_server(data_dir, timeout=timeout, attach=True)


@contextlib.contextmanager
def embedded_postgres(
    data_dir: str | os.PathLike[str],
    *,
    timeout: float = _DEFAULT_START_TIMEOUT,
    attach: bool = False,
) -> Iterator[EmbeddedPostgres]:
    """Runs (or uses) an embedded PostgreSQL server for the duration of a ``with`` block.

    Args:
        data_dir: Data directory, see :func:`start_embedded_postgres`.
        timeout: Seconds to wait for the server to become ready.
        attach: If True, use the server of another live process when there is
            one (:func:`attach_or_start_embedded_postgres`); if False, always
            start one (:func:`start_embedded_postgres`).

    Yields:
        The running server; when the block exits, even on error, it is
        stopped if the handle owns it, else left running for its owner.
    """
    if attach:
        server = attach_or_start_embedded_postgres(data_dir, timeout=timeout)
    else:
        server = start_embedded_postgres(data_dir, timeout=timeout)
    try:
        yield server
    finally:
        server.stop()


def _open_server(
    data_dir: str | os.PathLike[str], *, timeout: float, attach: bool
) -> EmbeddedPostgres:
    """Implements :func:`start_embedded_postgres` and :func:`attach_or_start_embedded_postgres`.

    Args:
        data_dir: Data directory.
        timeout: Seconds to wait for the lock, then for the server to become ready.
        attach: Whether to attach to a server owned by a live process.

    Returns:
        A handle on the running server.

    Raises:
        EmbeddedPostgresError: the server could not be started, or is owned
            by a live process and ``attach`` is False.
    """
    path = pathlib.Path(data_dir).expanduser().resolve()
    with _running_lock:
        existing = _running.get(path)
        if not attach and existing is not None and existing.is_running():
            raise EmbeddedPostgresError(f"an embedded PostgreSQL is already running on {path}")
        path.mkdir(parents=True, exist_ok=True)
        with _data_dir_locked(path, timeout):
            started = time.monotonic()
            live = _find_live_server(path)
            if live is not None and live.owner is not None:
                if not attach:
                    raise EmbeddedPostgresError(_in_use_message(path, live, live.owner))
                return _attach(path, live, live.owner)
            stale = _read_owner_record(path)
            if live is not None:
                _stop_leftover_server(path, live.pid, _DEFAULT_STOP_TIMEOUT)
            if stale is not None:
                _remove_stale_socket_dir(path, pathlib.Path(stale.socket_dir))
                _remove_owner_record(path)
            server = _start_owned(path, timeout)
        _running[path] = server
        atexit.register(server.stop)
    _log.info(
        "embedded PostgreSQL ready in %.2fs (pid %d, %s)",
        time.monotonic() - started,
        server.pid,
        path,
    )
    return server


def _attach(path: pathlib.Path, live: _LiveServer, owner: psutil.Process) -> EmbeddedPostgres:
    """Returns a non-owning handle on a server that a live process owns.

    Args:
        path: Absolute data directory.
        live: The running server.
        owner: Its owner.

    Returns:
        The handle (``owned`` False).

    Raises:
        EmbeddedPostgresError: the server does not listen on a Unix-domain socket.
    """
    if live.socket_dir is None:
        raise EmbeddedPostgresError(
            f"the PostgreSQL server on {path} (pid {live.pid}) has no Unix-domain socket"
        )
    _log.info("using the embedded PostgreSQL of process %d (pid %d, %s)", owner.pid, live.pid, path)
    return EmbeddedPostgres(
        data_dir=path,
        url=_make_url(live.socket_dir, live.port),
        owned=False,
        pid=live.pid,
        process=None,
        socket_dir=live.socket_dir,
        owns_socket_dir=False,
    )


def _start_owned(path: pathlib.Path, timeout: float) -> EmbeddedPostgres:
    """Initialises ``path`` if needed and starts a server owned by this process.

    Must be called with the data directory lock held and no server running.

    Args:
        path: Absolute data directory, which exists.
        timeout: Seconds to wait for the server to become ready.

    Returns:
        The handle (``owned`` True), recorded in :data:`OWNER_FILE`.

    Raises:
        EmbeddedPostgresError: ``initdb`` failed or the server did not start.
    """
    install_dir = _pg_install_dir()
    account = _server_account()
    if account is not None:
        _make_reachable(path, install_dir, account)
    path.chmod(0o700)  # PostgreSQL refuses group/world-accessible data directories.
    if not (path / "PG_VERSION").exists():
        _initdb(install_dir, path, account)

    socket_dir, owns_socket_dir = _choose_socket_dir(path, account)
    url = _make_url(socket_dir, PORT)
    record = _OwnerRecord(
        owner_pid=os.getpid(),
        owner_create_time=psutil.Process().create_time(),
        postmaster_pid=None,
        socket_dir=str(socket_dir),
        url=url,
    )
    try:
        # Recorded before the launch too: if we die in between, the server is
        # known to be ours (and so an orphan) rather than of unknown origin.
        _write_owner_record(path, record)
        proc = _launch_postmaster(install_dir, path, socket_dir, account)
        try:
            _write_owner_record(path, attrs.evolve(record, postmaster_pid=proc.pid))
            _wait_until_ready(proc, path, timeout)
        except BaseException:
            _terminate_postmaster(proc, _DEFAULT_STOP_TIMEOUT)
            raise
    except BaseException:
        _remove_owner_record(path)
        if owns_socket_dir:
            shutil.rmtree(socket_dir, ignore_errors=True)
        raise

    return EmbeddedPostgres(
        data_dir=path,
        url=url,
        owned=True,
        pid=proc.pid,
        process=proc,
        socket_dir=socket_dir,
        owns_socket_dir=owns_socket_dir,
    )


# --------------------------------------------------------------------------- helpers


def _make_url(socket_dir: pathlib.Path, port: int) -> str:
    """Builds the DSN for a server listening in ``socket_dir``.

    Args:
        socket_dir: Directory of the Unix-domain socket.
        port: Server port (part of the socket file name).

    Returns:
        A ``postgresql://`` URL accepted by asyncpg, psql and libpq.
    """
    # Percent-encoding (not "+" for spaces): libpq decodes only %XX in URIs.
    query = urllib.parse.urlencode(
        {"host": str(socket_dir), "port": str(port)}, safe="/", quote_via=urllib.parse.quote
    )
    return f"postgresql://{DB_USER}@/{DB_NAME}?{query}"


def _server_account() -> _Account | None:
    """Returns the account to run PostgreSQL as, creating it when needed.

    PostgreSQL refuses to run as root, so when we are root we run it as
    :data:`SYSTEM_USER`, creating that system user the first time.

    Returns:
        None when PostgreSQL can run as the current user, else the account.

    Raises:
        EmbeddedPostgresError: the system user could not be created.
    """
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        _log.info("running as root: creating system user %r for PostgreSQL", SYSTEM_USER)
        cmd = [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SYSTEM_USER,
        ]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            raise EmbeddedPostgresError(
                f"PostgreSQL cannot run as root and 'useradd' is unavailable; create a system user "
                f"{SYSTEM_USER!r} or run as a non-root user"
            ) from exc
        try:  # Also covers a concurrent creation making useradd fail.
            entry = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise EmbeddedPostgresError(
                f"could not create system user {SYSTEM_USER!r}: {result.stderr.strip()}"
            ) from None
    return _Account(name=SYSTEM_USER, uid=entry.pw_uid, gid=entry.pw_gid)


def _make_reachable(data_dir: pathlib.Path, install_dir: pathlib.Path, account: _Account) -> None:
    """Lets ``account`` use the data directory and the PostgreSQL installation.

    Adds the "search" permission for others (``o+x``, never read) to every
    directory above the data directory and the installation, gives the data
    directory to ``account``, and makes the installation world-readable
    if it is not already (normal pip installs are).

    Args:
        data_dir: Absolute data directory, which exists.
        install_dir: The bundled ``pginstall`` directory.
        account: Account PostgreSQL will run as.
    """
    for start in (data_dir, install_dir):
        for parent in start.parents:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                _log.info("granting o+x on %s so %r can reach %s", parent, account.name, start)
                parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)

    if data_dir.stat().st_uid != account.uid:
        for root, dirs, files in os.walk(data_dir):
            os.chown(root, account.uid, account.gid)
            for name in (*dirs, *files):
                os.chown(os.path.join(root, name), account.uid, account.gid, follow_symlinks=False)

    for root, _dirs, files in os.walk(install_dir):
        _add_mode(pathlib.Path(root), stat.S_IROTH | stat.S_IXOTH)
        file_bits = stat.S_IROTH | (stat.S_IXOTH if os.path.basename(root) == "bin" else 0)
        for name in files:
            _add_mode(pathlib.Path(root, name), file_bits)


def _add_mode(path: pathlib.Path, bits: int) -> None:
    """Adds permission ``bits`` to ``path`` unless it already has them.

    Args:
        path: File or directory (symlinks are followed).
        bits: ``stat.S_I*`` permission bits to add.
    """
    mode = path.stat().st_mode
    if mode & bits != bits:
        path.chmod(stat.S_IMODE(mode) | bits)


def _server_env() -> dict[str, str]:
    """Environment for PostgreSQL programs.

    Drops ``PG*`` variables (``PGDATA``, ``PGPORT``, ``PGOPTIONS``...) so a
    developer's libpq settings cannot change how the server is set up.

    Returns:
        A copy of the environment without ``PG*`` variables.
    """
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _initdb(install_dir: pathlib.Path, data_dir: pathlib.Path, account: _Account | None) -> None:
    """Initialises a new PostgreSQL cluster in ``data_dir``.

    The cluster uses UTF-8, byte-order ("C") collation, trust authentication
    and a ``postgres`` superuser. Character classification uses ``C.UTF-8``
    where the C library has it (so ``lower()``/``ILIKE`` handle non-ASCII
    letters), else plain ``C``.

    Args:
        install_dir: The bundled ``pginstall`` directory.
        data_dir: Empty or missing data directory.
        account: Account to run ``initdb`` as, or None.

    Raises:
        EmbeddedPostgresError: ``initdb`` failed.
    """
    base = [
        str(install_dir / "bin" / "initdb"),
        "--pgdata",
        str(data_dir),
        "--username",
        DB_USER,
        "--auth",
        "trust",
        "--encoding",
        "UTF8",
        "--locale",
        "C",
    ]
    _log.info("initialising PostgreSQL data directory %s", data_dir)
    result: subprocess.CompletedProcess[str] | None = None
    for extra in (["--lc-ctype", "C.UTF-8"], []):
        result = subprocess.run(
            base + extra,
            cwd=data_dir,
            env=_server_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            user=None if account is None else account.uid,
            group=None if account is None else account.gid,
            extra_groups=None if account is None else [],
        )
        if result.returncode == 0:
            return
        if "invalid locale name" not in result.stderr:
            break
    assert result is not None
    raise EmbeddedPostgresError(
        f"initdb failed for {data_dir} (exit status {result.returncode}):\n"
        f"{result.stdout}{result.stderr}"
    )


def _choose_socket_dir(
    data_dir: pathlib.Path, account: _Account | None
) -> tuple[pathlib.Path, bool]:
    """Picks the directory for the server's Unix-domain socket.

    The data directory is used when the socket path fits in a socket address
    and has no characters special to ``unix_socket_directories``; otherwise
    a new private directory is created under ``/tmp``.

    Args:
        data_dir: Absolute data directory.
        account: Account PostgreSQL runs as (owner of a new directory), or None.

    Returns:
        The directory, and whether it was created for this server (and must
        be removed when it stops).
    """
    if _socket_dir_ok(data_dir):
        return data_dir, False
    base = "/tmp" if os.path.isdir("/tmp") else None  # macOS's $TMPDIR is too long.
    socket_dir = pathlib.Path(tempfile.mkdtemp(prefix=_SOCKET_DIR_PREFIX, dir=base))
    if not _socket_dir_ok(socket_dir):
        shutil.rmtree(socket_dir, ignore_errors=True)
        raise EmbeddedPostgresError(f"no usable directory for the socket of {data_dir}")
    if account is not None:
        os.chown(socket_dir, account.uid, account.gid)
    _log.info("data directory path too long for a socket; using %s", socket_dir)
    return socket_dir, True


def _socket_dir_ok(directory: pathlib.Path) -> bool:
    """Tells whether PostgreSQL can create its socket in ``directory``.

    Args:
        directory: Candidate socket directory.

    Returns:
        True if the socket path is short enough and the name unambiguous.
    """
    socket_path = os.fsencode(directory / _SOCKET_NAME)
    return len(socket_path) <= _MAX_SOCKET_PATH_BYTES and not (
        _SOCKET_DIR_SPECIAL_CHARS & set(str(directory))
    )


def _launch_postmaster(
    install_dir: pathlib.Path,
    data_dir: pathlib.Path,
    socket_dir: pathlib.Path,
    account: _Account | None,
) -> subprocess.Popen[bytes]:
    """Starts ``postgres`` as a child process (without waiting for readiness).

    Its output is appended to ``postgres.log`` in the data directory.

    Args:
        install_dir: The bundled ``pginstall`` directory.
        data_dir: Initialised data directory.
        socket_dir: Directory for the Unix-domain socket.
        account: Account to run the server as, or None.

    Returns:
        The postmaster process.
    """
    log_path = data_dir / "postgres.log"
    cmd = [
        str(install_dir / "bin" / "postgres"),
        "-D",
        str(data_dir),
        "-p",
        str(PORT),
        "-c",
        "listen_addresses=",  # No TCP: Unix-domain socket only.
        "-c",
        f"unix_socket_directories={socket_dir}",
        "-c",
        "unix_socket_permissions=0700",
    ]
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with open(log_fd, "ab") as log:
        if account is not None:
            os.chown(log_path, account.uid, account.gid)
        return subprocess.Popen(
            cmd,
            cwd=data_dir,
            env=_server_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Own session: terminal signals (Ctrl-C) go to us, not to the server.
            start_new_session=True,
            user=None if account is None else account.uid,
            group=None if account is None else account.gid,
            extra_groups=None if account is None else [],
        )


def _read_pid_file(data_dir: pathlib.Path) -> list[str]:
    """Reads ``postmaster.pid`` (PostgreSQL's lock and status file).

    Args:
        data_dir: Data directory.

    Returns:
        Its lines (pid, data dir, start time, port, socket dir, listen
        address, shared memory key, status), or an empty list if missing.
    """
    try:
        return (data_dir / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return []


def _log_tail(data_dir: pathlib.Path, lines: int = 30) -> str:
    """Returns the end of the server log, for error messages.

    Args:
        data_dir: Data directory.
        lines: Number of lines to return.

    Returns:
        The last lines of ``postgres.log`` (empty if unreadable).
    """
    try:
        text = (data_dir / "postgres.log").read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _wait_until_ready(
    proc: subprocess.Popen[bytes], data_dir: pathlib.Path, timeout: float
) -> None:
    """Waits until the postmaster accepts connections.

    The postmaster writes ``ready`` in ``postmaster.pid`` once it has opened
    its socket and finished recovery (this is also what ``pg_ctl -w`` checks).

    Args:
        proc: The postmaster process.
        data_dir: Its data directory.
        timeout: Seconds to wait.

    Raises:
        EmbeddedPostgresError: the server exited or did not become ready in time.
    """
    deadline = time.monotonic() + timeout
    while True:
        status = proc.poll()
        if status is not None:
            raise EmbeddedPostgresError(
                f"PostgreSQL exited with status {status} while starting; "
                f"end of {data_dir / 'postgres.log'}:\n{_log_tail(data_dir)}"
            )
        lines = _read_pid_file(data_dir)
        if len(lines) >= 8 and lines[0].strip() == str(proc.pid) and lines[7].strip() == "ready":
            return
        if time.monotonic() > deadline:
            raise EmbeddedPostgresError(
                f"PostgreSQL not ready after {timeout:g}s; "
                f"end of {data_dir / 'postgres.log'}:\n{_log_tail(data_dir)}"
            )
        time.sleep(_POLL_INTERVAL)


def _terminate_postmaster(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Shuts down a postmaster we started and reaps it.

    Args:
        proc: The postmaster process.
        timeout: Seconds to wait for the fast shutdown before escalating.
    """
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            _log.warning("PostgreSQL (pid %d) ignored %s, escalating", proc.pid, sig.name)
    _kill_tree(proc.pid)
    proc.wait()


def _kill_tree(pid: int) -> None:
    """Sends SIGKILL to a process and its descendants.

    Args:
        pid: Root of the process tree.
    """
    try:
        root = psutil.Process(pid)
        victims = [*root.children(recursive=True), root]
    except psutil.Error:
        return
    for victim in victims:
        with contextlib.suppress(psutil.Error):
            victim.kill()


def _is_postmaster_of(pid: int, data_dir: pathlib.Path) -> bool:
    """Tells whether ``pid`` is a live postmaster serving ``data_dir``.

    Args:
        pid: Process id read from ``postmaster.pid``.
        data_dir: Absolute data directory.

    Returns:
        True only if the process is alive (not a zombie), is ``postgres``,
        and was started with ``data_dir`` on its command line.
    """
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline: list[str] = proc.cmdline()
    except psutil.Error:
        return False
    return bool(cmdline) and os.path.basename(cmdline[0]) == "postgres" and str(data_dir) in cmdline


def _lock_data_dir(data_dir: pathlib.Path, timeout: float) -> int:
    """Takes the exclusive inter-process lock of a data directory.

    The lock is a ``flock`` on the directory itself (``initdb`` wants an empty
    directory, so no lock file can live in it). Child processes do not
    inherit it (``subprocess`` closes descriptors), and it is released when
    the descriptor is closed, including when the process dies.

    Args:
        data_dir: Existing data directory.
        timeout: Seconds to wait while another process holds the lock.

    Returns:
        The descriptor holding the lock; close it to release the lock.

    Raises:
        OSError: the directory cannot be opened.
        EmbeddedPostgresError: the lock was not obtained within ``timeout``.
    """
    fd = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EmbeddedPostgresError(
                        f"another process kept {data_dir} locked (starting or stopping "
                        f"PostgreSQL) for more than {timeout:g}s"
                    ) from None
                time.sleep(_POLL_INTERVAL)
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def _data_dir_locked(data_dir: pathlib.Path, timeout: float) -> Iterator[None]:
    """Holds the data directory's inter-process lock (see :func:`_lock_data_dir`).

    Args:
        data_dir: Existing data directory.
        timeout: Seconds to wait for the lock.

    Yields:
        Nothing; the lock is released when the block exits.
    """
    fd = _lock_data_dir(data_dir, timeout)
    try:
        yield
    finally:
        os.close(fd)


def _read_owner_record(data_dir: pathlib.Path) -> _OwnerRecord | None:
    """Reads :data:`OWNER_FILE`.

    Args:
        data_dir: Data directory.

    Returns:
        The record, or None if the file is missing or unreadable.
    """
    try:
        data = json.loads((data_dir / OWNER_FILE).read_text())
        postmaster_pid = data["postmaster_pid"]
        return _OwnerRecord(
            owner_pid=int(data["owner_pid"]),
            owner_create_time=float(data["owner_create_time"]),
            postmaster_pid=None if postmaster_pid is None else int(postmaster_pid),
            socket_dir=str(data["socket_dir"]),
            url=str(data["url"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        _log.warning("ignoring unreadable %s in %s: %s", OWNER_FILE, data_dir, exc)
        return None


def _write_owner_record(data_dir: pathlib.Path, record: _OwnerRecord) -> None:
    """Writes :data:`OWNER_FILE` atomically.

    Args:
        data_dir: Data directory.
        record: What to record.
    """
    path = data_dir / OWNER_FILE
    tmp = path.with_name(f"{OWNER_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w") as f:
        json.dump(attrs.asdict(record), f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def _remove_owner_record(data_dir: pathlib.Path) -> None:
    """Deletes :data:`OWNER_FILE` if present.

    Args:
        data_dir: Data directory.
    """
    with contextlib.suppress(FileNotFoundError):
        (data_dir / OWNER_FILE).unlink()


def _live_process(pid: int, create_time: float | None = None) -> psutil.Process | None:
    """Returns a process if it is alive (not a zombie).

    Args:
        pid: Process id.
        create_time: If given, the process must also have started at this
            time, so that a later process reusing ``pid`` does not count.

    Returns:
        The process, or None.
    """
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if create_time is not None and abs(proc.create_time() - create_time) > (
            _CREATE_TIME_TOLERANCE
        ):
            return None
    except psutil.Error:
        return None
    return proc


def _owner_of(data_dir: pathlib.Path, postmaster_pid: int) -> psutil.Process | None:
    """Finds the live process owning the postmaster running on ``data_dir``.

    With an owner record for this postmaster, the recorded process owns it,
    if still alive: either it is still the postmaster's parent (a dead
    parent's children are reparented, so a reused pid cannot pass this
    test, and it does not depend on the clock), or a process with the
    recorded pid and start time exists. Without a record (a server started
    by an older version, or by hand), its parent owns it unless it was
    reparented to init. A subreaper adopting an unrecorded orphan thus
    counts as its owner: refusing to stop it is the safe mistake.

    Args:
        data_dir: Absolute data directory.
        postmaster_pid: The live postmaster on ``data_dir``.

    Returns:
        The owner, or None if the server is orphaned.
    """
    try:
        parent = psutil.Process(postmaster_pid).parent()
    except psutil.Error:
        parent = None
    record = _read_owner_record(data_dir)
    if record is not None and record.postmaster_pid in (None, postmaster_pid):
        if parent is not None and parent.pid == record.owner_pid:
            return _live_process(parent.pid)
        return _live_process(record.owner_pid, record.owner_create_time)
    if parent is None or parent.pid <= 1:
        return None
    return _live_process(parent.pid)


def _find_live_server(data_dir: pathlib.Path) -> _LiveServer | None:
    """Finds the server running on ``data_dir``, and its owner.

    Args:
        data_dir: Absolute data directory.

    Returns:
        The server, or None if no live postmaster serves ``data_dir`` (a
        stale ``postmaster.pid`` is left for PostgreSQL, which handles it).
    """
    lines = _read_pid_file(data_dir)
    try:
        pid = int(lines[0])
    except (IndexError, ValueError):
        return None
    if not _is_postmaster_of(pid, data_dir):
        return None
    try:
        port = int(lines[3])
    except (IndexError, ValueError):
        port = PORT
    socket_dir = lines[4].strip() if len(lines) > 4 else ""
    return _LiveServer(
        pid=pid,
        port=port,
        socket_dir=pathlib.Path(socket_dir) if socket_dir else None,
        owner=_owner_of(data_dir, pid),
    )


def _in_use_message(data_dir: pathlib.Path, live: _LiveServer, owner: psutil.Process) -> str:
    """Explains why a server cannot be started on ``data_dir``.

    Args:
        data_dir: Absolute data directory.
        live: The server running there.
        owner: Its live owner.

    Returns:
        The error message.
    """
    try:
        command = " ".join(owner.cmdline()) or owner.name()
    except psutil.Error:
        command = "?"
    return (
        f"PostgreSQL on {data_dir} (pid {live.pid}) belongs to running process {owner.pid} "
        f"({command}); not stopping it. Stop that process first, or share its server "
        f"with attach_or_start_embedded_postgres()"
    )


def _remove_stale_socket_dir(data_dir: pathlib.Path, socket_dir: pathlib.Path) -> None:
    """Deletes the private socket directory of a server that no longer runs.

    Only a directory created by :func:`_choose_socket_dir` is deleted.

    Args:
        data_dir: Absolute data directory.
        socket_dir: Socket directory recorded for the old server.
    """
    if (
        socket_dir != data_dir
        and socket_dir.name.startswith(_SOCKET_DIR_PREFIX)
        and socket_dir.parent in (pathlib.Path("/tmp"), pathlib.Path(tempfile.gettempdir()))
        and not (socket_dir / _SOCKET_NAME).exists()
    ):
        shutil.rmtree(socket_dir, ignore_errors=True)


def _stop_leftover_server(data_dir: pathlib.Path, pid: int, timeout: float) -> None:
    """Stops an orphaned server still running on ``data_dir``.

    This happens when a process died without stopping its server (e.g.
    ``kill -9``). The caller checked that no live process owns it.

    Args:
        data_dir: Absolute data directory.
        pid: The leftover postmaster.
        timeout: Seconds to wait for the fast shutdown before escalating.

    Raises:
        EmbeddedPostgresError: the leftover server could not be stopped.
    """
    _log.warning("stopping an orphaned PostgreSQL server (pid %d) on %s", pid, data_dir)
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError as exc:
            raise EmbeddedPostgresError(
                f"not allowed to stop the leftover PostgreSQL (pid {pid}) on {data_dir}: {exc}"
            ) from exc
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _is_postmaster_of(pid, data_dir):
                return
            time.sleep(_POLL_INTERVAL)
    raise EmbeddedPostgresError(f"could not stop leftover PostgreSQL (pid {pid}) on {data_dir}")
