"""A throwaway RabbitMQ cluster on this machine: N ``rabbitmq-server`` nodes on their own ports.

Each node has its own node name, AMQP and distribution ports, data, log and config files in a
temporary directory, no plugins, and the cluster's own Erlang cookie (``$HOME/.erlang.cookie`` of a
temporary home). The first node boots alone; the others find it through classic peer discovery
(``cluster_formation.classic_config``) and join its cluster as they boot; a node that did not is
joined with ``rabbitmqctl join_cluster``. A RabbitMQ already running on the machine (the usual
``rabbit@localhost`` on 5672) is not touched: only the shared ``epmd`` sees the new node names.

    python -m notifier.devtools.rabbit_cluster            # start 3 nodes, print the broker URLs, Ctrl-C stops
    python -m notifier.devtools.rabbit_cluster --nodes 5 --dir /tmp/rabbits

In code::

    cluster = RabbitCluster().start()
    cluster.broker_url        # "amqp://guest:guest@127.0.0.1:P1//;amqp://...P2//;amqp://...P3//"
    cluster.kill(cluster.nodes[0])   # SIGKILL, as a crashed host
    cluster.restart(cluster.nodes[0])
    cluster.stop()

Needs RabbitMQ 3.8+ (quorum queues); measured with 3.10 on Erlang/OTP 25.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# The scripts themselves: /usr/sbin/rabbitmq-server and rabbitmqctl are wrappers that switch to the
# rabbitmq user when run as root, and with it to that user's HOME, so to its cookie.
BIN_DIR = Path(os.environ.get("RABBITMQ_BIN_DIR", "/usr/lib/rabbitmq/bin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class RabbitNode:
    name: str  # notifier-xxxxxx-c1@localhost
    port: int  # AMQP
    dist_port: int  # Erlang distribution (clustering and CLI tools)
    base: Path  # its data, logs and config
    popen: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def short(self) -> str:
        return self.name.split("@", 1)[0]

    def url(self, vhost: str = "/") -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{vhost}"

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


class RabbitCluster:
    def __init__(self, size: int = 3, workdir: Path | str | None = None, prefix: str | None = None,
                 boot_timeout: float = 120.0):
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self.size = size
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="notifier-rabbits-"))
        # Node names are registered in the machine's one epmd: a random part keeps runs apart.
        self.prefix = prefix or f"notifier-{secrets.token_hex(3)}-c"
        self.boot_timeout = boot_timeout
        self.home = self.workdir / "home"
        self.env_file = self.workdir / "rabbitmq-env.conf"
        self.nodes: list[RabbitNode] = []

    # --- URLs --------------------------------------------------------------------------------

    def urls(self, vhost: str = "/") -> list[str]:
        return [node.url(vhost) for node in self.nodes]

    @property
    def broker_url(self) -> str:
        """Every node, ``;``-separated: Celery/kombu fail over between them in this order."""
        return ";".join(self.urls())

    def node_by_port(self, port: int) -> RabbitNode | None:
        return next((node for node in self.nodes if node.port == port), None)

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> "RabbitCluster":
        if not (BIN_DIR / "rabbitmq-server").exists():
            raise RuntimeError(f"rabbitmq-server not found in {BIN_DIR} (Debian: apt-get install rabbitmq-server; "
                               "or set RABBITMQ_BIN_DIR)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o600)
        # The machine's rabbitmq-env.conf names the system node (NODENAME=rabbit@localhost): not ours.
        self.env_file.write_text("")
        self.nodes = []
        for i in range(1, self.size + 1):
            node = RabbitNode(name=f"{self.prefix}{i}@localhost", port=free_port(), dist_port=free_port(),
                              base=self.workdir / f"c{i}")
            self._write_config(node, peers=[self.nodes[0]] if self.nodes else [])
            self.nodes.append(node)
        try:
            first, rest = self.nodes[0], self.nodes[1:]
            self._launch(first)
            self._wait_booted([first])
            for node in rest:  # all at once: each joins the first as it boots
                self._launch(node)
            self._wait_booted(rest)
            self._ensure_joined()
        except BaseException:
            self.stop()
            raise
        return self

    def _write_config(self, node: RabbitNode, peers: list[RabbitNode]) -> None:
        node.base.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listeners.tcp.1 = 127.0.0.1:{node.port}",
            "loopback_users.guest = true",
            "log.console = false",
            "log.file.level = info",
        ]
        if peers:
            lines.append("cluster_formation.peer_discovery_backend = classic_config")
            lines += [f"cluster_formation.classic_config.nodes.{i} = {peer.name}" for i, peer in enumerate(peers, 1)]
        (node.base / "rabbitmq.conf").write_text("\n".join(lines) + "\n")
        (node.base / "enabled_plugins").write_text("[].\n")

    def _env(self, node: RabbitNode | None = None) -> dict[str, str]:
        env = {**os.environ, "HOME": str(self.home), "RABBITMQ_CONF_ENV_FILE": str(self.env_file),
               "ERL_EPMD_ADDRESS": "127.0.0.1"}
        if node is not None:
            base = node.base
            env.update({
                "RABBITMQ_NODENAME": node.name,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(node.port),
                "RABBITMQ_DIST_PORT": str(node.dist_port),
                "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
                "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(base / "log"),
                "RABBITMQ_PID_FILE": str(base / "pid"),
                "RABBITMQ_FEATURE_FLAGS_FILE": str(base / "feature_flags"),
                # Distribution on the loopback interface only, like the node's AMQP listener.
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            })
        return env

    def _launch(self, node: RabbitNode) -> None:
        log = (node.base / "stdout.log").open("ab")
        node.popen = subprocess.Popen([str(BIN_DIR / "rabbitmq-server")], env=self._env(node), stdout=log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def _wait_booted(self, nodes: list[RabbitNode]) -> None:
        """The AMQP listener opens at the end of the boot."""
        deadline = time.monotonic() + self.boot_timeout
        waiting = list(nodes)
        while waiting:
            for node in list(waiting):
                if not node.alive():
                    raise RuntimeError(f"RabbitMQ node {node.name} exited while booting:\n{self.node_log(node)}")
                if answers(node.port):
                    waiting.remove(node)
            if waiting and time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ nodes {[n.name for n in waiting]} did not boot in "
                                   f"{self.boot_timeout:.0f}s")
            if waiting:
                time.sleep(0.2)

    def _ensure_joined(self) -> None:
        first = self.nodes[0]
        running = set(self.running_nodes(first))
        for node in self.nodes[1:]:
            if node.name in running:
                continue
            # Peer discovery did not join it (e.g. it booted before the first answered): join by hand.
            for args in (["stop_app"], ["reset"], ["join_cluster", first.name], ["start_app"]):
                self.ctl(node, *args)
        deadline = time.monotonic() + self.boot_timeout
        while set(self.running_nodes(first)) != {n.name for n in self.nodes}:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the nodes did not form one cluster: {self.running_nodes(first)}")
            time.sleep(0.5)

    def kill(self, node: RabbitNode, sig: int = signal.SIGKILL) -> None:
        """Signal the node's whole process group (the start script, the Erlang VM, its port programs)."""
        if node.popen is None:
            return
        try:
            os.killpg(node.popen.pid, sig)
        except ProcessLookupError:
            pass
        try:
            node.popen.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(node.popen.pid, signal.SIGKILL)
            node.popen.wait(5)

    def restart(self, node: RabbitNode) -> None:
        """Start a stopped node again on its data: it rejoins the cluster (and its quorum queues catch up)."""
        if node.alive():
            return
        self._launch(node)
        self._wait_booted([node])
        deadline = time.monotonic() + self.boot_timeout
        while node.name not in self.running_nodes(node):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{node.name} did not rejoin the cluster")
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL after 20 s) and remove the temporary directory."""
        alive = [node for node in self.nodes if node.alive()]
        for node in alive:
            try:
                os.killpg(node.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 20
        for node in alive:
            try:
                node.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for node in self.nodes:
            if node.popen is not None:
                try:
                    os.killpg(node.popen.pid, signal.SIGKILL)  # whatever is left of the group
                except ProcessLookupError:
                    pass
                node.popen.wait(5)
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "RabbitCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- inspection (rabbitmqctl) ------------------------------------------------------------

    def ctl(self, node: RabbitNode, *args: str, timeout: float = 60.0) -> str:
        result = subprocess.run([str(BIN_DIR / "rabbitmqctl"), "-n", node.name, "-q", *args], env=self._env(),
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {node.name} failed: {result.stderr or result.stdout}")
        return result.stdout

    def _json(self, node: RabbitNode | None, *args: str):
        node = node or self.any_running()
        return json.loads(self.ctl(node, *args, "--formatter", "json") or "null")

    def any_running(self) -> RabbitNode:
        for node in self.nodes:
            if node.alive():
                return node
        raise RuntimeError("no RabbitMQ node of the cluster is running")

    def running_nodes(self, node: RabbitNode | None = None) -> list[str]:
        return list((self._json(node, "cluster_status") or {}).get("running_nodes", []))

    def queues(self, vhost: str = "/", node: RabbitNode | None = None) -> dict[str, dict]:
        """Per queue: type, leader, members, online members, consumers and messages."""
        rows = self._json(node, "list_queues", "-p", vhost, "name", "type", "leader", "members", "online",
                          "consumers", "messages") or []
        return {row["name"]: row for row in rows}

    def connections_per_node(self, node: RabbitNode | None = None) -> dict[str, int]:
        """Client connections per node name (each node listens on its own AMQP port)."""
        counts: dict[str, int] = {n.name: 0 for n in self.nodes}
        for row in self._json(node, "list_connections", "port") or []:
            owner = self.node_by_port(int(row["port"]))
            if owner is not None:
                counts[owner.name] += 1
        return counts

    def node_log(self, node: RabbitNode, tail: int = 40) -> str:
        lines: list[str] = []
        for path in [node.base / "stdout.log", *sorted((node.base / "log").glob("*.log"))]:
            try:
                lines += path.read_text(errors="replace").splitlines()[-tail:]
            except OSError:
                pass
        return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--dir", help="keep the nodes' files here (default: a temporary directory, removed)")
    args = parser.parse_args()
    started = time.monotonic()
    cluster = RabbitCluster(size=args.nodes, workdir=args.dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    cluster.start()
    try:
        print(f"RabbitMQ cluster of {len(cluster.nodes)} nodes up in {time.monotonic() - started:.1f}s "
              f"(files in {cluster.workdir}):", flush=True)
        for node in cluster.nodes:
            print(f"  {node.name}  {node.url()}  (distribution port {node.dist_port})")
        print(f"\nCELERY_BROKER_URL='{cluster.broker_url}'\nNOTIFIER_QUEUE_TYPE=quorum\n")
        print(f"rabbitmqctl: HOME={cluster.home} RABBITMQ_CONF_ENV_FILE={cluster.env_file} "
              f"{BIN_DIR}/rabbitmqctl -n {cluster.nodes[0].name} cluster_status")
        print("Ctrl-C stops the cluster.", flush=True)
        stop.wait()
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
