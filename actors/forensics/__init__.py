"""Decision forensics, delivery: get every "why" out of the node without slowing it down.

Producers (strategies, the risk gate, the meta-controller, the regime actor) publish records from
:mod:`grodt.core.records` on the message bus (:class:`grodt.core.topics.Topics`). The bridge actor
(:mod:`actors.forensics_bridge`) hands them, with order and position events, to a
:class:`~actors.forensics.pipeline.ForensicsPipeline`, which coordinates:

- :mod:`~actors.forensics.ingress`: the bounded queue the engine thread appends to, and its
  overflow file;
- :mod:`~actors.forensics.encoder` and :mod:`~actors.forensics.dead_letters`: records → wire form
  (:mod:`~actors.forensics.codec`), and where what cannot be encoded is kept;
- :mod:`~actors.forensics.delivery` on a :mod:`~actors.forensics.worker` thread: in order to
  Kafka (:class:`~actors.forensics.sinks.KafkaSink`) or, by default, to Parquet in the run
  directory (:class:`~actors.forensics.sinks.ParquetSink`), with retries and reconnects;
- :mod:`~actors.forensics.outbox`: where records wait, on disk (:mod:`~actors.forensics.spill`),
  while the sink is down, and what a session leaves for the next one.

:mod:`~actors.forensics.config` validates the node config's ``forensics:`` section and
:mod:`~actors.forensics.convert` turns Nautilus events into records. Reading back is
:mod:`grodt.forensics` (a higher layer).
"""
