"""The ingest stage's bundling: items go to the partition Kafka's partitioner gives their
SKU, keep their order, and are cut at the configured size."""

from __future__ import annotations

import orjson
from aiokafka.partitioner import murmur2

from streams.agents.ingest import BUNDLE, Bundler


def java_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def test_items_land_on_their_skus_partition_in_order() -> None:
    b = Bundler(partitions=6, max_items=1000)
    skus = [f"SKU-{i % 37}" for i in range(500)]
    for n, sku in enumerate(skus):
        b.add(sku, {"sku": sku, "n": n})
    assert len(b) == 500
    seen = []
    for partition, raw in b.bundles():
        value = orjson.loads(raw)
        assert value["t"] == BUNDLE
        for item in value["items"]:
            assert java_partition(item["sku"].encode(), 6) == partition
            seen.append(item["n"])
    assert sorted(seen) == list(range(500))
    # per SKU the order of arrival is kept
    by_sku: dict[str, list[int]] = {}
    for _, raw in b.bundles():
        for item in orjson.loads(raw)["items"]:
            by_sku.setdefault(item["sku"], []).append(item["n"])
    assert all(ns == sorted(ns) for ns in by_sku.values())


def test_bundles_are_cut_at_max_items() -> None:
    b = Bundler(partitions=1, max_items=100)
    for n in range(250):
        b.add("ONE", {"sku": "ONE", "n": n})
    sizes = [len(orjson.loads(raw)["items"]) for _, raw in b.bundles()]
    assert sizes == [100, 100, 50]
    firsts = [orjson.loads(raw)["items"][0]["n"] for _, raw in b.bundles()]
    assert firsts == [0, 100, 200]


def test_nothing_added_nothing_sent() -> None:
    assert Bundler(partitions=3, max_items=10).bundles() == []


def test_local_kafka_cluster_ids_never_look_like_an_option() -> None:
    from streams.localkafka import _cluster_id

    ids = [_cluster_id() for _ in range(2000)]  # a leading "-" would come 1 in 64 times
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids)
