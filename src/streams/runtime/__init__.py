"""The one place that depends on Faust's and aiokafka's internals.

- ``consumer``: the Faust consumer whose rebalance wait is bounded and whose commit is
  contiguous (overrides ``wait_empty``, ``_getmany``, ``_to_message``, the ack bookkeeping),
  and ``release_unacked`` for events a flow abandons;
- ``commit``: the per-partition record tracking the commit is computed from (no Faust calls);
- ``events``: binding Faust's current event (``_current_event``) for table writes;
- ``store``: ``TableStore``, a table's local RocksDB partitions behind the ``PartitionStore``
  port (``ports``), written with its changelog directly; Faust's persisted-offset key;
- ``kafka``: the aiokafka internals the raw stages and the bulk restore read.

Importing it checks the installed versions against those the contract tests passed with
(``versions``); every private used has a test in tests/contract/test_runtime_privates.py.
"""

from streams.runtime.versions import check_versions

check_versions()
