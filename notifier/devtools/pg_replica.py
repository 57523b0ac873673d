"""A throwaway PostgreSQL primary and a streaming replica of it, on free ports in a temporary directory.

The machine's own server (5432) is not used for this: streaming needs a ``replication`` line in its
pg_hba.conf (the packaged one has none) and a base backup of the WHOLE cluster (every database on
it). So ``initdb`` makes a primary of its own; ``pg_basebackup -R`` copies it into a hot standby
that streams from it.

    python -m notifier.devtools.pg_replica          # prints DATABASE_URL and DATABASE_REPLICA_URL; Ctrl-C stops

In code::

    pair = PgReplicaPair().start()
    pair.create_database("notifier")
    pair.primary_url("notifier"), pair.replica_url("notifier")
    pair.wait_caught_up()           # the replica has replayed everything the primary wrote
    pair.pause_replay() / pair.resume_replay()
    pair.stop()

Run as root, the servers run as the ``postgres`` user (PostgreSQL refuses root). Finds the binaries
in ``PG_BIN_DIR`` or the newest /usr/lib/postgresql/*/bin.
"""
from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from notifier.devtools.rabbit_cluster import free_port


def pg_bin_dir() -> Path:
    configured = os.environ.get("PG_BIN_DIR")
    if configured:
        return Path(configured)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: [int(x) if x.isdigit() else x for x in p.parent.parent.name.split(".")])
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found (Debian: apt-get install postgresql; "
                           "or set PG_BIN_DIR)")
    return found[-1].parent


class PgServer:
    def __init__(self, name: str, data: Path, port: int, run_dir: Path):
        self.name, self.data, self.port, self.run_dir = name, data, port, run_dir
        self.popen: subprocess.Popen | None = None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


class PgReplicaPair:
    def __init__(self, workdir: Path | str | None = None, user: str = "postgres", timeout: float = 60.0):
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="notifier-pg-replica-"))
        self.user = user  # the database superuser
        self.timeout = timeout
        self.bin = pg_bin_dir()
        self.os_user = None
        if os.geteuid() == 0:  # postgres will not run as root
            self.os_user = pwd.getpwnam("postgres")
        self.primary = PgServer("primary", self.workdir / "primary", free_port(), self.workdir / "run")
        self.replica = PgServer("replica", self.workdir / "replica", free_port(), self.workdir / "run")

    # --- URLs ------------------------------------------------------------------------------------

    def primary_url(self, database: str = "postgres") -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.primary.port}/{database}"

    def replica_url(self, database: str = "postgres") -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.replica.port}/{database}"

    # --- lifecycle ---------------------------------------------------------------------------

    def _run(self, *args: str) -> None:
        result = subprocess.run([str(self.bin / args[0]), *args[1:]], capture_output=True, text=True,
                                timeout=self.timeout * 2, **self._as_user())
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stderr or result.stdout}")

    def _as_user(self) -> dict:
        if self.os_user is None:
            return {}
        return {"user": self.os_user.pw_uid, "group": self.os_user.pw_gid, "extra_groups": [],
                "env": {**os.environ, "HOME": self.os_user.pw_dir}}

    def start(self) -> "PgReplicaPair":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.primary.run_dir.mkdir(exist_ok=True)
        if self.os_user is not None:
            for path in (self.workdir, self.primary.run_dir):
                os.chown(path, self.os_user.pw_uid, self.os_user.pw_gid)
        try:
            # --auth=trust: both servers listen on 127.0.0.1 only; initdb's pg_hba.conf then also
            # lets local connections replicate ("host replication all 127.0.0.1/32 trust").
            self._run("initdb", "-D", str(self.primary.data), "-U", self.user, "--auth=trust", "-E", "UTF8",
                      "--no-instructions")
            self._launch(self.primary)
            self._wait_ready(self.primary)
            self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", self.user,
                      "-D", str(self.replica.data), "-R", "-X", "stream", "-c", "fast")
            self._launch(self.replica)
            self._wait_ready(self.replica)
            if not self.query(self.replica, "SELECT pg_is_in_recovery()")[0][0]:
                raise RuntimeError("the replica is not in recovery")
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, server: PgServer) -> None:
        # A throwaway pair: no fsync, small memory; hot_standby lets the replica answer reads.
        options = {"listen_addresses": "127.0.0.1", "port": str(server.port),
                   "unix_socket_directories": str(server.run_dir), "fsync": "off",
                   "full_page_writes": "off", "shared_buffers": "32MB", "max_connections": "60",
                   "wal_level": "replica", "max_wal_senders": "4", "hot_standby": "on",
                   "logging_collector": "off", "log_min_messages": "warning"}
        args = [str(self.bin / "postgres"), "-D", str(server.data)]
        for name, value in options.items():
            args += ["-c", f"{name}={value}"]
        log = (self.workdir / f"{server.name}.log").open("ab")
        server.popen = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True, **self._as_user())
        log.close()

    def _wait_ready(self, server: PgServer) -> None:
        import psycopg

        deadline = time.monotonic() + self.timeout
        while True:
            if not server.alive():
                raise RuntimeError(f"the {server.name} exited:\n{self.log(server)}")
            try:
                psycopg.connect(self._conninfo(server), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the {server.name} did not accept connections:\n{self.log(server)}")
                time.sleep(0.1)

    def stop_server(self, server: PgServer, *, immediate: bool = False) -> None:
        if server.popen is None:
            return
        if server.alive():
            try:  # SIGINT: fast shutdown; SIGQUIT: immediate
                os.killpg(server.popen.pid, signal.SIGQUIT if immediate else signal.SIGINT)
            except ProcessLookupError:
                pass
            try:
                server.popen.wait(30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(server.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.popen.wait(5)

    def stop(self) -> None:
        """Stop both servers and remove the temporary directory."""
        self.stop_server(self.replica)
        self.stop_server(self.primary)
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "PgReplicaPair":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log(self, server: PgServer, tail: int = 30) -> str:
        try:
            return "\n".join((self.workdir / f"{server.name}.log").read_text(errors="replace").splitlines()[-tail:])
        except OSError:
            return ""

    # --- SQL ------------------------------------------------------------------------------------

    def _conninfo(self, server: PgServer, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={server.port} user={self.user} dbname={database}"

    def query(self, server: PgServer, sql: str, params=(), database: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(self._conninfo(server, database), autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def create_database(self, name: str) -> None:
        from psycopg import sql

        self.query(self.primary, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)).as_string(None))

    def wait_caught_up(self, timeout: float | None = None) -> None:
        """Until the replica has replayed the primary's WAL up to its position now (what has been
        inserted, whether or not written out yet: every transaction committed so far)."""
        target = self.query(self.primary, "SELECT pg_current_wal_insert_lsn()")[0][0]
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            caught_up = self.query(self.replica, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [str(target)])[0][0]
            if caught_up:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replica did not replay up to {target}")
            time.sleep(0.05)

    def pause_replay(self) -> None:
        self.query(self.replica, "SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + self.timeout
        while self.query(self.replica, "SELECT pg_get_wal_replay_pause_state()")[0][0] != "paused":
            if time.monotonic() > deadline:
                raise RuntimeError("the replica's replay did not pause")
            time.sleep(0.05)

    def resume_replay(self) -> None:
        self.query(self.replica, "SELECT pg_wal_replay_resume()")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="notifier", help="create this database on the primary")
    parser.add_argument("--dir", help="keep the servers' files here (default: a temporary directory, removed)")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    pair = PgReplicaPair(workdir=args.dir).start()
    try:
        pair.create_database(args.database)
        print(f"PostgreSQL primary on {pair.primary.port}, streaming replica on {pair.replica.port} "
              f"(files in {pair.workdir}):\n")
        print(f"DATABASE_URL={pair.primary_url(args.database)}")
        print(f"DATABASE_REPLICA_URL={pair.replica_url(args.database)}\n")
        print("Migrate with DATABASE_URL set (migrations never run on the replica). Ctrl-C stops both.", flush=True)
        stop.wait()
    finally:
        pair.stop()


if __name__ == "__main__":
    main()
