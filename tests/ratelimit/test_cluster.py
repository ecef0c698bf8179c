"""The scripts on a real 3-master Redis Cluster started for this test: every key of a decision
must hash to one slot (redis-py refuses a cross-slot EVALSHA), sellers spread over masters, and
the shared breaker lives in a slot of its own."""
from __future__ import annotations

import subprocess
import time

import pytest
from redis.cluster import RedisCluster

from ratelimit.breakers import BreakerConfig, BreakerState
from ratelimit.exceptions import CircuitOpen
from ratelimit.guard import Bucket, Outcome, Priority
from ratelimit.selectors import seller_status, shared_breaker_status
from tests.ratelimit.redis_servers import REDIS_CLI, REDIS_SERVER, RedisProcess

pytestmark = pytest.mark.skipif(REDIS_SERVER is None or REDIS_CLI is None,
                                reason="redis-server / redis-cli binaries not installed")


@pytest.fixture(scope="module")
def cluster():
    nodes = [RedisProcess(cluster=True) for _ in range(3)]
    try:
        for node in nodes:
            node.start()
        subprocess.run(
            [REDIS_CLI, "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes],
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=30,
        )
        client = RedisCluster(host="127.0.0.1", port=nodes[0].port, socket_timeout=2)
        deadline = time.monotonic() + 20
        while client.cluster_info().get("cluster_state") != "ok":
            assert time.monotonic() < deadline, "cluster never became ok"
            time.sleep(0.1)
        yield client
        client.close()
    finally:
        for node in nodes:
            node.close()


def test_scripts_run_on_a_three_master_cluster(make_guard, cluster):
    config = BreakerConfig(open_seconds=0.2)
    guard = make_guard(client=cluster, capacity=5, window_seconds=1.0, breakers=config,
                       recovery_per_second=0.0)
    sellers = [f"seller-{i}" for i in range(12)]
    owners = {cluster.get_node_from_key(guard.keys.bucket(s)).port for s in sellers}
    assert len(owners) == 3  # the sellers really are spread over the three masters

    for seller in sellers:
        granted = 0
        while guard.decide(seller_id=seller, priority=Priority.HIGH).granted:
            granted += 1
        assert granted == 5
        guard.record(seller_id=seller, outcome=Outcome.RATE_LIMITED)
        assert guard.decide(seller_id=seller, bucket=Bucket.JOBS).granted is False
        status = seller_status(seller, guard=guard)
        assert status.factor == 0.75 and status.rate_limited_last_hour == 1

    for _ in range(5):
        guard.record(seller_id="seller-0", outcome=Outcome.AUTH_ERROR)
    with pytest.raises(CircuitOpen):
        guard.acquire(seller_id="seller-0")
    for seller in sellers[1:6]:
        guard.record(seller_id=seller, outcome=Outcome.TIMEOUT)
    assert shared_breaker_status(guard=guard).state is BreakerState.OPEN
    with pytest.raises(CircuitOpen) as info:
        guard.acquire(seller_id="seller-7")
    assert info.value.name == "cardtrader"

    time.sleep(0.2)
    report = guard.maintain()
    assert {"seller-0", "cardtrader"} <= set(report.half_opened)
    assert set(report.throttled) == set(sellers)
    guard.reset_breaker("seller-0")
    guard.reset_bucket("seller-0")
    assert seller_status("seller-0", guard=guard).tokens == 5.0
