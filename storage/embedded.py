"""Embedded PostgreSQL server for development and tests.

When no ``DATABASE_URL`` is configured (``make serve``, the test suite), Curbe Chat runs a
private PostgreSQL 16 from the binaries bundled in the ``pgserver`` wheel, so that nobody has
to install or configure a database to try the project.

``initdb`` creates the data directory (an existing one is reused with its data); ``pg_ctl -w
start`` launches the server detached in its own session (a Ctrl-C in the terminal reaches only
our process) and waits until it accepts connections; ``pg_ctl -w stop`` shuts it down
("fast", then "immediate"). The server listens on a Unix-domain socket only (no TCP port, so
no clashes), with ``trust`` authentication for the ``postgres`` role; the socket is in the
data directory, or in a directory chosen by pgserver when that path is too long for a socket
address. The data directory's path must not contain ``"$`\\,`` (pg_ctl passes it through the
shell; libpq splits hosts on commas). PostgreSQL refuses to run as root: as root, it runs as
the no-login system user ``pgserver`` (created if needed), which gets the data directory and
the "search" permission (``o+x``) on the directories above it.

pgserver's Python API (one server shared between processes, stopped when the last one exits)
is not used. Here the process that started a server is its *owner*, named with its pid and
start time (so that a reused pid does not count) by the ``curbe.owner`` setting on the
server's command line (``SHOW curbe.owner``):

* :meth:`EmbeddedPostgres.stop` (also an :mod:`atexit` hook) stops the server of its owner.
* While the owner lives, no other process stops its server: ``curbe-chat serve`` owns it and
  admin commands run meanwhile *attach* to it (:func:`attach_or_start_embedded_postgres`),
  whereas :func:`start_embedded_postgres` refuses to start.
* An orphaned server, whose owner died without stopping it (``kill -9``), is stopped and
  replaced by the next start on the same data directory.
* Starting, attaching and stopping are serialised between processes by an exclusive ``flock``
  on the data directory, so nobody sees a server that is still starting or stopping.

The API is synchronous: call it before the Trio event loop starts (or from a worker thread).

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
import logging
import math
import os
import pathlib
import pwd
import shlex
import shutil
import stat
import subprocess
import threading
import time
import urllib.parse
import warnings
from collections.abc import Iterator

import attrs
import psutil

with warnings.catch_warnings():
    # platformdirs warns while pgserver is imported when XDG_RUNTIME_DIR is unset (containers).
    warnings.simplefilter("ignore")
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.postgres_server import PostgresServer
    from pgserver.utils import find_suitable_socket_dir

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "attach_or_start_embedded_postgres",
    "embedded_postgres",
    "postgres_bin_dir",
    "start_embedded_postgres",
]

_log = logging.getLogger(__name__)

#: System account used to run PostgreSQL when we are root (the one pgserver uses).
SYSTEM_USER = "pgserver"
#: Database role (superuser) created by ``initdb`` and used in the URL.
DB_USER = "postgres"
#: Database name used in the URL.
DB_NAME = "postgres"
#: Port number; with Unix sockets it only determines the socket file name.
PORT = 5432

# Custom setting on the postmaster's command line naming its owner: "<pid>/<start time>".
_OWNER_SETTING = "curbe.owner"
# pg_ctl puts the data directory in double quotes on a shell command line; libpq splits
# socket directories on commas.
_UNSUPPORTED_PATH_CHARS = frozenset('"$`\\,')
_POLL_INTERVAL = 0.02
_DEFAULT_START_TIMEOUT = 60.0
_DEFAULT_STOP_TIMEOUT = 30.0
# psutil computes a process's start time from the same kernel counters each
# time, so a recorded start time matches exactly; this only absorbs rounding.
_CREATE_TIME_TOLERANCE = 0.01


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL server could not be initialised, started or stopped."""


def postgres_bin_dir() -> pathlib.Path:
    """Returns the directory of the bundled PostgreSQL programs (``psql``, ``pg_dump``...)."""
    return pathlib.Path(POSTGRES_BIN_PATH)


@attrs.frozen
class _Account:
    """The system account PostgreSQL runs as, when it differs from ours."""

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
    _socket_dir: pathlib.Path = attrs.field(alias="socket_dir", repr=False, eq=False)
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
        return self._socket_dir / f".s.PGSQL.{PORT}"

    def is_running(self) -> bool:
        """Tells whether the postmaster is still alive (whoever stops it)."""
        return _postmaster(self._pid, self.data_dir) is not None

    def stop(self, timeout: float = _DEFAULT_STOP_TIMEOUT) -> None:
        """Stops the server if this handle owns it, and waits until it has exited.

        Runs ``pg_ctl stop`` in "fast" mode (open transactions are rolled back,
        clients disconnected, data flushed), then in "immediate" mode (crash
        recovery on the next start) if that takes more than ``timeout``
        seconds. Calling it again does nothing.
        In a forked child of the owner it does nothing either.

        On a handle that does not own the server (``owned`` is False) this
        only detaches: the server keeps running for its owner.

        Args:
            timeout: Seconds to wait for the fast shutdown (and for the data
                directory lock).

        Raises:
            EmbeddedPostgresError: the server could not be stopped.
        """
        if not self.owned:
            _log.debug("detaching from embedded PostgreSQL (pid %d, %s)", self._pid, self.data_dir)
            return
        if self._stopped.is_set():
            return
        with _locked(self.data_dir, timeout):
            live = _find_live_server(self.data_dir)
            if live is None or (
                live.pid == self._pid and live.owner is not None and live.owner.pid == os.getpid()
            ):
                if live is not None:
                    _log.info("stopping embedded PostgreSQL (pid %d, %s)", live.pid, self.data_dir)
                    _stop_server(self.data_dir, live, _server_account(), timeout)
                _forget(self.data_dir, self._socket_dir)
        atexit.unregister(self.stop)
        self._stopped.set()


@attrs.frozen
class _LiveServer:
    """A postmaster running on a data directory, as found in ``postmaster.pid`` and the process table.

    Attributes:
        process: The postmaster.
        port: Its port.
        socket_dir: Its socket directory, or None.
        owner: The live process that owns it, or None if it is orphaned.
    """

    process: psutil.Process
    port: int
    socket_dir: pathlib.Path | None
    owner: psutil.Process | None

    @property
    def pid(self) -> int:
        pid: int = self.process.pid
        return pid


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
    """Implements :func:`start_embedded_postgres` and :func:`attach_or_start_embedded_postgres`."""
    path = pathlib.Path(data_dir).expanduser().resolve()
    if _UNSUPPORTED_PATH_CHARS & set(str(path)):
        raise EmbeddedPostgresError(
            f"the data directory path {str(path)!r} contains one of the characters "
            f"{''.join(sorted(_UNSUPPORTED_PATH_CHARS))}, which pg_ctl or libpq mishandle"
        )
    path.mkdir(parents=True, exist_ok=True)
    with _locked(path, timeout):
        started = time.monotonic()
        live = _find_live_server(path)
        if live is not None and live.owner is not None:
            if attach:
                return _attach(path, live, live.owner)
            if live.owner.pid == os.getpid():
                raise EmbeddedPostgresError(f"an embedded PostgreSQL is already running on {path}")
            raise EmbeddedPostgresError(_in_use_message(path, live, live.owner))
        if live is not None:
            _log.warning("stopping an orphaned PostgreSQL server (pid %d) on %s", live.pid, path)
            _stop_server(path, live, _server_account(), _DEFAULT_STOP_TIMEOUT)
        server = _start_owned(path, timeout)
    atexit.register(server.stop)
    _log.info(
        "embedded PostgreSQL ready in %.2fs (pid %d, %s)",
        time.monotonic() - started,
        server.pid,
        path,
    )
    return server


def _attach(path: pathlib.Path, live: _LiveServer, owner: psutil.Process) -> EmbeddedPostgres:
    """Returns a non-owning handle on a server that a live process owns."""
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
        socket_dir=live.socket_dir,
    )


def _start_owned(path: pathlib.Path, timeout: float) -> EmbeddedPostgres:
    """Initialises ``path`` if needed and starts a server owned by this process.

    Must be called with the data directory lock held and no server running.

    Args:
        path: Absolute data directory, which exists.
        timeout: Seconds to wait for the server to become ready.

    Returns:
        The handle (``owned`` True).

    Raises:
        EmbeddedPostgresError: ``initdb`` failed or the server did not start.
    """
    account = _server_account()
    if account is not None:
        _make_reachable(path, account)
    path.chmod(0o700)  # PostgreSQL refuses group/world-accessible data directories.
    if not (path / "PG_VERSION").exists():
        _initdb(path, account)

    socket_dir = _choose_socket_dir(path, account)
    me = psutil.Process()
    options = [
        *("-p", str(PORT), "-c", "listen_addresses="),  # No TCP: Unix-domain socket only.
        *("-c", f'unix_socket_directories="{socket_dir}"', "-c", "unix_socket_permissions=0700"),
        *("-c", f"{_OWNER_SETTING}={me.pid}/{me.create_time()!r}"),
    ]
    log = path / "postgres.log"
    start = ["pg_ctl", "start", "-D", str(path), "-l", str(log), "-t", str(math.ceil(timeout))]
    try:
        result = _run([*start, "-w", "-o", shlex.join(options)], path, account)
        live = _find_live_server(path)
        if result.returncode != 0 or live is None:
            raise EmbeddedPostgresError(
                f"PostgreSQL did not start on {path}: {result.stderr.strip()}\n"
                f"end of {log}:\n{_log_tail(log)}"
            )
    except BaseException:
        leftover = _find_live_server(path)  # E.g. pg_ctl timed out or was interrupted.
        if leftover is not None:
            with contextlib.suppress(EmbeddedPostgresError):
                _stop_server(path, leftover, account, _DEFAULT_STOP_TIMEOUT)
        _forget(path, socket_dir)
        raise

    url = _make_url(socket_dir, PORT)
    return EmbeddedPostgres(data_dir=path, url=url, owned=True, pid=live.pid, socket_dir=socket_dir)


# --------------------------------------------------------------------------- helpers


def _make_url(socket_dir: pathlib.Path, port: int) -> str:
    """Builds the ``postgresql://`` URL (asyncpg, psql, libpq) of a server listening in ``socket_dir``."""
    # Percent-encoding (not "+" for spaces): libpq decodes only %XX in URIs.
    query = urllib.parse.urlencode(
        {"host": str(socket_dir), "port": str(port)}, safe="/", quote_via=urllib.parse.quote
    )
    return f"postgresql://{DB_USER}@/{DB_NAME}?{query}"


def _run(
    args: list[str], cwd: pathlib.Path, account: _Account | None
) -> subprocess.CompletedProcess[str]:
    """Runs a bundled PostgreSQL program and captures its output.

    ``PG*`` variables (``PGDATA``, ``PGPORT``...) are removed from its
    environment, so a developer's libpq settings cannot change the server.

    Args:
        args: Program name (in :func:`postgres_bin_dir`) and arguments.
        cwd: Working directory (one that ``account`` can enter).
        account: Account to run the program as, or None.

    Returns:
        The finished process.
    """
    return subprocess.run(
        [str(postgres_bin_dir() / args[0]), *args[1:]],
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        user=None if account is None else account.uid,
        group=None if account is None else account.gid,
        extra_groups=None if account is None else [],
    )


def _server_account() -> _Account | None:
    """Returns the account to run PostgreSQL as (None: ours), creating a system user as root.

    Raises:
        EmbeddedPostgresError: we are root and the system user could not be created.
    """
    if os.geteuid() != 0:
        return None
    error = ""
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        _log.info("running as root: creating system user %r for PostgreSQL", SYSTEM_USER)
        useradd = ["useradd", "--system", "--user-group", "--no-create-home"]
        useradd += ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", SYSTEM_USER]
        try:
            error = subprocess.run(useradd, capture_output=True, text=True, check=False).stderr
        except OSError as exc:  # No useradd.
            error = str(exc)
    try:  # Also covers a creation by another process making useradd fail.
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise EmbeddedPostgresError(
            f"PostgreSQL cannot run as root and creating the system user {SYSTEM_USER!r} "
            f"failed: {error.strip()}"
        ) from None
    return _Account(uid=entry.pw_uid, gid=entry.pw_gid)


def _make_reachable(data_dir: pathlib.Path, account: _Account) -> None:
    """Lets ``account`` use the data directory and the PostgreSQL installation.

    Adds the "search" permission for others (``o+x``) to the directories above
    both, gives the data directory to ``account``, and makes the installation
    world-readable if it is not already (normal pip installs are). Modes are
    only changed where needed, so read-only file systems are fine.
    """
    install_dir = postgres_bin_dir().parent
    _grant_search(data_dir)
    _grant_search(install_dir)
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


def _grant_search(path: pathlib.Path) -> None:
    """Adds ``o+x`` to every directory above ``path`` that lacks it."""
    for parent in path.parents:
        _add_mode(parent, stat.S_IXOTH)


def _add_mode(path: pathlib.Path, bits: int) -> None:
    """Adds permission ``bits`` to ``path`` unless it already has them."""
    mode = path.stat().st_mode
    if mode & bits != bits:
        _log.info("adding permission bits %03o to %s for user %r", bits, path, SYSTEM_USER)
        path.chmod(stat.S_IMODE(mode) | bits)


def _initdb(data_dir: pathlib.Path, account: _Account | None) -> None:
    """Initialises a new PostgreSQL cluster in ``data_dir``.

    The cluster uses UTF-8, byte-order ("C") collation, trust authentication
    and a ``postgres`` superuser. Character classification uses ``C.UTF-8``
    where the C library has it (so ``lower()``/``ILIKE`` handle non-ASCII
    letters), else plain ``C``.

    Raises:
        EmbeddedPostgresError: ``initdb`` failed.
    """
    base = ["initdb", "--pgdata", str(data_dir), "--username", DB_USER, "--auth", "trust"]
    base += ["--encoding", "UTF8", "--locale", "C"]
    _log.info("initialising PostgreSQL data directory %s", data_dir)
    for extra in (["--lc-ctype", "C.UTF-8"], []):
        result = _run(base + extra, data_dir, account)
        if result.returncode == 0:
            return
        if "invalid locale name" not in result.stderr:
            break
    raise EmbeddedPostgresError(
        f"initdb failed for {data_dir} (exit status {result.returncode}):\n"
        f"{result.stdout}{result.stderr}"
    )


def _choose_socket_dir(data_dir: pathlib.Path, account: _Account | None) -> pathlib.Path:
    """Picks the socket directory with pgserver: the data directory if the socket path fits.

    Otherwise pgserver picks a directory under its runtime path, named after
    the data directory (so that it is reused, not piled up); it is removed
    when the server stops.
    """
    try:
        socket_dir: pathlib.Path = find_suitable_socket_dir(data_dir, PostgresServer.runtime_path)
    except (OSError, RuntimeError) as exc:
        raise EmbeddedPostgresError(f"no usable directory for the socket of {data_dir}") from exc
    if account is not None and socket_dir != data_dir:
        _grant_search(socket_dir)
        os.chown(socket_dir, account.uid, account.gid)
    return socket_dir


def _forget(data_dir: pathlib.Path, socket_dir: pathlib.Path) -> None:
    """Removes the socket directory of a stopped server of ours, if pgserver picked it."""
    if socket_dir != data_dir:
        shutil.rmtree(socket_dir, ignore_errors=True)


def _log_tail(log: pathlib.Path, lines: int = 30) -> str:
    """Returns the last lines of the server log, for error messages."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop_server(
    data_dir: pathlib.Path, live: _LiveServer, account: _Account | None, timeout: float
) -> None:
    """Shuts down the server on ``data_dir`` with ``pg_ctl stop`` and waits until it has exited.

    Args:
        data_dir: Absolute data directory.
        live: The running server.
        account: Account PostgreSQL runs as, or None.
        timeout: Seconds to wait for the "fast" shutdown before an "immediate" one.

    Raises:
        EmbeddedPostgresError: the server is still running.
    """
    for mode, wait in (("fast", timeout), ("immediate", 10.0)):
        result = _run(
            ["pg_ctl", "stop", "-D", str(data_dir), "-m", mode, "-w", "-t", str(math.ceil(wait))],
            data_dir,
            account,
        )
        # pg_ctl returns once postmaster.pid is gone, just before the postmaster exits.
        if _exited(live.process, 10.0 if result.returncode == 0 else 0.0):
            return
        _log.warning(
            "pg_ctl stop -m %s failed for PostgreSQL (pid %d): %s",
            mode,
            live.pid,
            result.stderr.strip(),
        )
    raise EmbeddedPostgresError(f"could not stop PostgreSQL (pid {live.pid}) on {data_dir}")


def _exited(process: psutil.Process, timeout: float) -> bool:
    """Waits up to ``timeout`` seconds until ``process`` has exited; reaps it if it is our child.

    After ``pg_ctl start`` exits, the postmaster is reparented to PID 1 (or a
    subreaper): to us when we are PID 1 in a container. A zombie that another
    parent does not reap counts as exited (``psutil.Process.wait`` would
    wait for it to vanish).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(process.pid, 0)
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL)


def _postmaster(pid: int, data_dir: pathlib.Path) -> tuple[psutil.Process, list[str]] | None:
    """Returns process ``pid`` and its command line if it is a live postmaster serving ``data_dir``."""
    try:
        process = psutil.Process(pid)
        cmdline: list[str] = process.cmdline()
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    if cmdline and os.path.basename(cmdline[0]) == "postgres" and str(data_dir) in cmdline:
        return process, cmdline
    return None


def _find_live_server(data_dir: pathlib.Path) -> _LiveServer | None:
    """Finds the server running on ``data_dir`` (from ``postmaster.pid``), and its owner.

    Returns:
        The server, or None if no live postmaster serves ``data_dir`` (a
        stale ``postmaster.pid`` is left for PostgreSQL, which handles it).
    """
    try:
        # pid, data dir, start time, port, socket dir, listen address, shared memory, status
        fields = [*(data_dir / "postmaster.pid").read_text().splitlines(), "", "", "", "", ""]
        found = _postmaster(int(fields[0]), data_dir)
        port = int(fields[3].strip() or PORT)
    except (OSError, ValueError):
        return None
    if found is None:
        return None
    process, cmdline = found
    socket_dir = fields[4].strip()
    return _LiveServer(
        process=process,
        port=port,
        socket_dir=pathlib.Path(socket_dir) if socket_dir else None,
        owner=_owner(process, cmdline),
    )


def _owner(postmaster: psutil.Process, cmdline: list[str]) -> psutil.Process | None:
    """Finds the live process owning a postmaster.

    Our servers name their owner on their command line, with its start time
    so that a later process reusing the pid does not count. A server without
    it (started by an older version, or by hand) belongs to its parent unless
    it was reparented to init: refusing to stop it is the safe mistake.

    Returns:
        The owner, or None if the server is orphaned.
    """
    prefix = f"{_OWNER_SETTING}="
    tag = next((arg.removeprefix(prefix) for arg in cmdline if arg.startswith(prefix)), None)
    try:
        if tag is None:
            parent = postmaster.parent()
            return None if parent is None or parent.pid <= 1 else _live_process(parent.pid)
        pid, _, create_time = tag.partition("/")
        return _live_process(int(pid), float(create_time))
    except (psutil.Error, ValueError):
        return None


def _live_process(pid: int, create_time: float | None = None) -> psutil.Process | None:
    """Returns process ``pid`` if it is alive (not a zombie) and, if given, started at ``create_time``."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        if create_time is not None and abs(process.create_time() - create_time) > (
            _CREATE_TIME_TOLERANCE
        ):
            return None
    except psutil.Error:
        return None
    return process


def _in_use_message(data_dir: pathlib.Path, live: _LiveServer, owner: psutil.Process) -> str:
    """Explains why a server cannot be started on ``data_dir``."""
    try:
        command = " ".join(owner.cmdline()) or owner.name()
    except psutil.Error:
        command = "?"
    return (
        f"PostgreSQL on {data_dir} (pid {live.pid}) belongs to running process {owner.pid} "
        f"({command}); not stopping it. Stop that process first, or share its server "
        f"with attach_or_start_embedded_postgres()"
    )


@contextlib.contextmanager
def _locked(data_dir: pathlib.Path, timeout: float) -> Iterator[None]:
    """Holds the exclusive inter-process lock of a data directory.

    The lock is a ``flock`` on the directory itself (``initdb`` wants an empty
    directory, so no lock file can live in it). Every call opens the directory
    anew, so threads of one process exclude each other too; the lock is not
    inherited by child processes and is released if the process dies.

    Raises:
        EmbeddedPostgresError: the lock was not obtained within ``timeout`` seconds.
    """
    fd = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EmbeddedPostgresError(
                        f"another process kept {data_dir} locked (starting or stopping "
                        f"PostgreSQL) for more than {timeout:g}s"
                    ) from None
                time.sleep(_POLL_INTERVAL)
        yield
    finally:
        os.close(fd)
