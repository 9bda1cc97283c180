"""Tests for :mod:`storage.embedded`: real PostgreSQL servers in temporary directories."""

from __future__ import annotations

import json
import os
import pathlib
import shlex
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from storage import embedded
from storage.embedded import (
    EmbeddedPostgres,
    EmbeddedPostgresError,
    attach_or_start_embedded_postgres,
    embedded_postgres,
    postgres_bin_dir,
    start_embedded_postgres,
)

pytestmark = pytest.mark.slow

Start = Callable[[str | os.PathLike[str]], EmbeddedPostgres]


@pytest.fixture
def start() -> Iterator[Start]:
    """Starts servers like start_embedded_postgres, and stops them after the test, pass or fail."""
    servers: list[EmbeddedPostgres] = []

    def _start(data_dir: str | os.PathLike[str]) -> EmbeddedPostgres:
        server = start_embedded_postgres(data_dir)
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.stop()


def psql(pg: EmbeddedPostgres, sql: str) -> str:
    """Runs SQL with the bundled psql through ``pg.url`` and returns the unaligned output."""
    result = subprocess.run(
        [str(postgres_bin_dir() / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", pg.url],
        input=sql,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def server_pids(pg: EmbeddedPostgres) -> list[int]:
    """The postmaster and its children (checkpointer, walwriter, backends...)."""
    postmaster = psutil.Process(pg.pid)
    return [postmaster.pid, *(child.pid for child in postmaster.children(recursive=True))]


def is_alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def processes_using(data_dir: pathlib.Path) -> list[int]:
    """Like ``ps``: live processes with the data directory on their command line."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and str(data_dir) in (
            proc.info["cmdline"] or []
        ):
            found.append(proc.pid)
    return found


def assert_stopped(pg: EmbeddedPostgres, pids: list[int]) -> None:
    assert not pg.is_running()
    assert [pid for pid in pids if is_alive(pid)] == []
    assert processes_using(pg.data_dir) == []
    assert not (pg.data_dir / "postmaster.pid").exists()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock, pytest.raises(OSError):
        sock.connect(str(pg.socket_path))


def test_restart_keeps_data_and_stop_ends_processes(tmp_path: pathlib.Path, start: Start) -> None:
    data_dir = tmp_path / "missing" / "pgdata"

    pg = start(data_dir)
    assert pg.data_dir == data_dir.resolve()
    assert (data_dir / "PG_VERSION").exists()
    assert pg.socket_path.is_socket()
    psql(pg, "CREATE TABLE greetings (text text); INSERT INTO greetings VALUES ('héllo');")
    assert psql(pg, "SELECT lower('ÉTÉ')") == "été"
    pids = server_pids(pg)
    assert len(pids) > 1

    pg.stop()
    assert_stopped(pg, pids)
    pg.stop()  # Idempotent.

    pg2 = start(data_dir)
    assert psql(pg2, "SELECT text FROM greetings") == "héllo"
    pids2 = server_pids(pg2)
    pg2.stop()
    assert_stopped(pg2, pids2)


def test_url_works_with_asyncpg(tmp_path: pathlib.Path, start: Start) -> None:
    pg = start(tmp_path / "pgdata")
    # trio_asyncio patches asyncio process-wide, so use plain asyncio in another interpreter.
    script = textwrap.dedent(
        """
        import asyncio, sys
        import asyncpg

        async def main():
            conn = await asyncpg.connect(sys.argv[1])
            try:
                await conn.execute("CREATE TABLE t (n int)")
                await conn.execute("INSERT INTO t VALUES ($1)", 42)
                print(await conn.fetchval("SELECT n FROM t"), await conn.fetchval("SHOW server_version"))
            finally:
                await conn.close()

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, pg.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    number, version = result.stdout.split()
    assert number == "42"
    assert version.startswith("16.")


def test_relative_data_dir(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, start: Start
) -> None:
    monkeypatch.chdir(tmp_path)
    pg = start(".curbe-data")
    assert pg.data_dir == tmp_path.resolve() / ".curbe-data"
    assert psql(pg, "SELECT 1") == "1"


def test_context_manager_stops_on_error(tmp_path: pathlib.Path) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), embedded_postgres(tmp_path / "pgdata") as pg:
        pids = server_pids(pg)
        raise Boom
    assert_stopped(pg, pids)


def test_long_data_dir_path_uses_short_socket_dir(tmp_path: pathlib.Path, start: Start) -> None:
    data_dir = tmp_path / ("d" * 100) / "pgdata"
    pg = start(data_dir)
    assert pg.socket_dir != pg.data_dir
    assert len(os.fsencode(pg.socket_path)) <= 103
    assert psql(pg, "SELECT 1") == "1"
    pg.stop()
    assert not pg.socket_dir.exists()


def owner_setting(pg: EmbeddedPostgres) -> tuple[int, float]:
    """The owner (pid, start time) that the server's ``curbe.owner`` setting names."""
    pid, _, create_time = psql(pg, "SHOW curbe.owner").partition("/")
    return int(pid), float(create_time)


def identity(pid: int) -> tuple[int, float]:
    return pid, psutil.Process(pid).create_time()


class OwnerProcess:
    """Another process (like ``curbe-chat serve``) that owns a server until told to stop it."""

    SCRIPT = textwrap.dedent(
        """
        import json, sys
        from storage.embedded import start_embedded_postgres

        pg = start_embedded_postgres(sys.argv[1])
        print(json.dumps({"ready": True, "pid": pg.pid, "url": pg.url}), flush=True)
        sys.stdin.readline()
        pg.stop()
        print("stopped", flush=True)
        """
    )

    def __init__(self, data_dir: pathlib.Path, stderr_path: pathlib.Path) -> None:
        self.stderr_path = stderr_path
        with stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", self.SCRIPT, str(data_dir)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # Blocks until the server is ready (or the owner died).
        assert line, f"owner process failed: {stderr_path.read_text()}"
        ready = json.loads(line)
        assert ready["ready"]
        self.postmaster_pid: int = ready["pid"]
        self.url: str = ready["url"]

    def finish(self) -> None:
        """Tells the owner to stop its server and exit, and waits until it has."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "stopped\n", self.stderr_path.read_text()
        assert self.proc.wait(timeout=60) == 0, self.stderr_path.read_text()

    def kill(self) -> None:
        """Cleanup after a failed test: kills the owner and its server."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if is_alive(self.postmaster_pid):
            postmaster = psutil.Process(self.postmaster_pid)
            victims = [postmaster, *postmaster.children(recursive=True)]
            for victim in victims:
                victim.kill()
            psutil.wait_procs(victims, timeout=30)


@pytest.fixture
def owner(tmp_path: pathlib.Path) -> Iterator[OwnerProcess]:
    """A live process owning a server on ``tmp_path / "pgdata"``."""
    owner = OwnerProcess(tmp_path / "pgdata", tmp_path / "owner-stderr.log")
    try:
        yield owner
    finally:
        owner.kill()


def test_server_of_live_process_is_attached_and_left_running(
    tmp_path: pathlib.Path, owner: OwnerProcess
) -> None:
    data_dir = tmp_path / "pgdata"
    pg = attach_or_start_embedded_postgres(data_dir)
    assert not pg.owned
    assert pg.pid == owner.postmaster_pid
    assert pg.url == owner.url
    assert pg.is_running()
    assert owner_setting(pg) == identity(owner.proc.pid)
    psql(pg, "CREATE TABLE notes (text text); INSERT INTO notes VALUES ('shared');")
    pids = server_pids(pg)

    pg.stop()  # Detaches only.
    assert pg.is_running()
    assert all(is_alive(pid) for pid in pids[:1])
    assert psql(pg, "SELECT text FROM notes") == "shared"

    with embedded_postgres(data_dir, attach=True) as pg2:
        assert not pg2.owned
        assert pg2.pid == owner.postmaster_pid
        assert psql(pg2, "SELECT count(*) FROM notes") == "1"
    assert is_alive(owner.postmaster_pid)
    assert psql(pg, "SELECT 1") == "1"

    owner.finish()
    assert_stopped(pg, pids)


def test_start_refuses_to_stop_server_of_live_process(
    tmp_path: pathlib.Path, owner: OwnerProcess
) -> None:
    data_dir = tmp_path / "pgdata"
    message = rf"\(pid {owner.postmaster_pid}\) belongs to running process {owner.proc.pid} "
    with pytest.raises(EmbeddedPostgresError, match=message):
        start_embedded_postgres(data_dir)
    with pytest.raises(EmbeddedPostgresError, match=message), embedded_postgres(data_dir):
        pytest.fail("must not start")
    assert is_alive(owner.postmaster_pid)

    pg = attach_or_start_embedded_postgres(data_dir)
    assert not pg.owned
    assert pg.pid == owner.postmaster_pid
    assert psql(pg, "SELECT 1") == "1"
    pids = server_pids(pg)
    owner.finish()
    assert_stopped(pg, pids)


def test_attach_starts_a_server_when_none_runs_and_shares_it_in_process(
    tmp_path: pathlib.Path,
) -> None:
    data_dir = tmp_path / "pgdata"
    pg = attach_or_start_embedded_postgres(data_dir)
    try:
        assert pg.owned
        assert owner_setting(pg) == identity(os.getpid())

        attached = attach_or_start_embedded_postgres(data_dir)
        assert not attached.owned
        assert (attached.pid, attached.url) == (pg.pid, pg.url)
        attached.stop()
        assert pg.is_running()
        assert psql(pg, "SELECT 1") == "1"
        with pytest.raises(EmbeddedPostgresError, match="already running"):
            start_embedded_postgres(data_dir)
        pids = server_pids(pg)
    finally:
        pg.stop()
    assert_stopped(pg, pids)


def start_as_child(data_dir: pathlib.Path) -> subprocess.Popen[bytes]:
    """Runs a server on the initialised ``data_dir`` as a child of this process, without
    ``curbe.owner`` (like older versions, which did not use pg_ctl), until it is ready."""
    account = embedded._server_account()  # As root: the system user owning data_dir.
    command = [str(postgres_bin_dir() / "postgres"), "-D", str(data_dir)]
    command += ["-c", "listen_addresses=", "-c", f"unix_socket_directories={data_dir}"]
    with (data_dir / "postgres.log").open("ab") as log:
        server = subprocess.Popen(
            command,
            cwd=data_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            user=None if account is None else account.uid,
            group=None if account is None else account.gid,
            extra_groups=None if account is None else [],
        )
    pid_file, deadline = data_dir / "postmaster.pid", time.monotonic() + 60
    while not pid_file.exists() or "ready" not in pid_file.read_text().split():
        assert server.poll() is None, (data_dir / "postgres.log").read_text()
        assert time.monotonic() < deadline, "the server is not ready"
        time.sleep(0.05)
    return server


def stop_child(server: subprocess.Popen[bytes]) -> None:
    server.terminate()  # "smart" shutdown
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def test_server_without_owner_setting_belongs_to_its_live_parent(
    tmp_path: pathlib.Path, start: Start
) -> None:
    """A server started by an older version (no ``curbe.owner``) is owned by its parent."""
    pg = start(tmp_path / "pgdata")  # Initialises the data directory.
    pg.stop()
    data_dir = pg.data_dir
    server = start_as_child(data_dir)  # Its live parent is this process.
    try:
        with pytest.raises(EmbeddedPostgresError, match="already running"):
            start_embedded_postgres(data_dir)
        assert server.poll() is None
        attached = attach_or_start_embedded_postgres(data_dir)
        assert not attached.owned
        assert attached.pid == server.pid
        assert psql(attached, "SELECT 1") == "1"
        attached.stop()
        assert server.poll() is None
    finally:
        stop_child(server)


@pytest.mark.parametrize("opener", [start_embedded_postgres, attach_or_start_embedded_postgres])
@pytest.mark.parametrize("owner_pid_reused", [False, True])
def test_leftover_server_from_dead_process_is_replaced(
    tmp_path: pathlib.Path,
    opener: Callable[[pathlib.Path], EmbeddedPostgres],
    owner_pid_reused: bool,
) -> None:
    data_dir = tmp_path / "pgdata"
    if owner_pid_reused:
        # A server like ours whose owner pid now belongs to another live process (this one):
        # curbe.owner names this pid with another start time.
        with embedded_postgres(data_dir) as first:  # Initialises data_dir.
            data_dir = first.data_dir
        me = psutil.Process()
        settings = [f"unix_socket_directories={data_dir}", "listen_addresses="]
        settings.append(f"curbe.owner={me.pid}/{me.create_time() - 1000!r}")
        options = shlex.join(arg for setting in settings for arg in ("-c", setting))
        pg_ctl = ["pg_ctl", "start", "-w", "-D", str(data_dir), "-o", options]
        pg_ctl += ["-l", str(data_dir / "postgres.log")]
        result = embedded._run(pg_ctl, data_dir, embedded._server_account())
        assert result.returncode == 0, result.stderr
        leftover_pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    else:
        # A process that starts a server and dies without stopping it (atexit does not run).
        script = textwrap.dedent(
            """
            import os, sys
            from storage.embedded import start_embedded_postgres

            print(start_embedded_postgres(sys.argv[1]).pid, flush=True)
            os._exit(0)
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", script, str(data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        leftover_pid = int(result.stdout)
    pg: EmbeddedPostgres | None = None
    try:
        assert is_alive(leftover_pid)
        pg = opener(data_dir)
        assert pg.owned
        assert not is_alive(leftover_pid)
        assert pg.pid != leftover_pid
        assert owner_setting(pg) == identity(os.getpid())
    finally:
        if pg is not None:
            pg.stop()
        if is_alive(leftover_pid):
            psutil.Process(leftover_pid).kill()
