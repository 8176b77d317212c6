"""Decision forensics: get every "why" out of the node without slowing it down.

Producers (strategies, the risk gate, the meta-controller, the regime actor) publish records from
:mod:`grodt.core.records` on the message bus (:class:`grodt.core.topics.Topics`). The bridge actor
(:mod:`actors.forensics_bridge`) hands them, with order and position events, to a
:class:`~grodt.forensics.pipeline.ForensicsPipeline`: a bounded queue drained by a thread that
delivers to Kafka (:class:`~grodt.forensics.sinks.KafkaSink`) or, by default, to Parquet in the
run directory (:class:`~grodt.forensics.sinks.ParquetSink`), spilling to local append-only files
(:mod:`grodt.forensics.spill`) when the queue is full or the broker is down.

Reading back: :func:`~grodt.forensics.reader.read_run` (a run's Parquet output),
:func:`~grodt.forensics.reader.consume` (Kafka), :func:`~grodt.forensics.trace.build_trace`
(decision → verdict → order → fills), and the ``grodt forensics`` command.
"""
