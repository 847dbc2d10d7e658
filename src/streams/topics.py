"""The topic contract of DESIGN.md section 2: names, partition counts, configs."""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.config import Settings

WEEK_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    # partition count must equal Settings.partitions (co-partitioned with SKU/PO state)
    copartitioned: bool = True


def topic_specs(s: Settings) -> list[TopicSpec]:
    """Every external topic, in and out, plus the DLQ of each input topic."""
    n = s.partitions
    ins = [
        TopicSpec(s.topic_ct_messages, s.ct_messages_partitions, copartitioned=False),
        TopicSpec(s.topic_purchase_orders, n),
        TopicSpec(s.topic_dispatches, n),
        TopicSpec(
            s.topic_sku_mappings,
            n,
            {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"},
        ),
    ]
    if s.df_enabled:  # Direct Fulfillment orders (the DF poller's, or upstream producers')
        ins.append(TopicSpec(s.topic_df_orders, n))
    outs = [
        TopicSpec(s.topic_inventory_updates, n),
        TopicSpec(s.topic_po_acknowledgements, n),
        TopicSpec(s.topic_shipment_confirmations, n),
        TopicSpec(s.topic_inventory_commands, n),
        # latest state per exception id is what matters; history stays for a week
        TopicSpec(
            s.topic_exceptions,
            n,
            {"cleanup.policy": "compact,delete", "retention.ms": str(4 * WEEK_MS)},
        ),
    ]
    dlqs = [
        TopicSpec(s.dlq_topic(t.name), 1, {"retention.ms": str(4 * WEEK_MS)}, copartitioned=False)
        for t in ins
    ]
    return ins + outs + dlqs
