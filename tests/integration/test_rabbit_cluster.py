"""Scale-out: the stack on a 3-node RabbitMQ cluster with quorum queues loses nothing when a broker
node or a worker host is SIGKILLed mid-load (issue 25; `make cluster-test` runs it at 100,000)."""
import pytest

from notifier.devtools.cluster_scenario import Scenario, format_report, run_scenario
from notifier.devtools.rabbit_cluster import RabbitCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Small enough for CI; batches and chunks of 125 so the load spans as many requests and messages as
# before (24 batches) and the fault lands mid-way, with fewer rows held by a killed worker.
SIZE = dict(notifications=3000, batch_size=125, chunk_size=125, clients=2, fault_at=0.4, claim_timeout=10.0,
            sweep_interval=2, drain_timeout=180.0)
TOTAL = SIZE["notifications"]


@pytest.fixture(scope="module")
def rabbit_cluster(tmp_path_factory):
    cluster = RabbitCluster(workdir=tmp_path_factory.mktemp("rabbits")).start()
    yield cluster
    for node in cluster.nodes:  # a throwaway cluster: no graceful shutdown (it took seconds per node)
        cluster.kill(node)
    cluster.stop()


# The worker test comes first: it kills no broker node, so the broker test's fixture has none to restart.
@pytest.fixture
def cluster(rabbit_cluster):
    """All three nodes running (a node a previous test killed is started again and rejoins)."""
    for node in rabbit_cluster.nodes:
        rabbit_cluster.restart(node)
    return rabbit_cluster


def test_a_worker_host_killed_mid_load_loses_nothing(cluster, transactional_db, tmp_path, capsys):
    report = run_scenario(cluster, Scenario(fault="worker", **SIZE), tmp_path, log=lambda m: None)
    with capsys.disabled():
        print("\n" + format_report(report))

    assert report["fault_detail"]["status_at_fault"].get("sent", 0) < TOTAL, "the kill came after the work"
    assert report["accepted"] == TOTAL
    assert report["by_status"] == {"sent": TOTAL}
    assert report["smtp"]["never_received"] == 0 and report["smtp"]["unknown"] == 0
    # At least once: what the dead worker had handed to SMTP but not recorded is sent again, and only that.
    assert report["smtp"]["notifications_duplicated"] <= report["reclaimed"]


def test_a_broker_node_killed_mid_load_loses_nothing_and_sends_nothing_twice(cluster, transactional_db, tmp_path,
                                                                             capsys):
    report = run_scenario(cluster, Scenario(fault="broker", **SIZE), tmp_path, log=lambda m: None)
    with capsys.disabled():
        print("\n" + format_report(report))

    # The node every process was connected to, and the leader of the queues they declared.
    assert report["fault_detail"]["killed"] == cluster.nodes[0].name, report["fault_detail"]
    assert report["fault_detail"]["normal_queue_leader_before"] == cluster.nodes[0].name
    assert report["normal_queue_after"]["leader"] != cluster.nodes[0].name
    assert report["accepted"] == TOTAL
    assert report["by_status"] == {"sent": TOTAL}
    assert report["smtp"]["never_received"] == 0 and report["smtp"]["unknown"] == 0
    # Redelivered messages find their rows already sent (the claim), so nobody got a mail twice.
    assert report["duplicates"] == 0
