"""Decision forensics, reading back: what the bridge delivered, as records and as traces.

Delivery (the bridge's pipeline, sinks, spill files, codec and ``forensics:`` section) lives with
the actor that uses it, in :mod:`actors.forensics`. Here: :func:`~grodt.forensics.reader.read_run`
(a run's Parquet output, spill leftovers included), :func:`~grodt.forensics.reader.consume`
(Kafka), :func:`~grodt.forensics.trace.build_trace` (decision → verdict → order → fills), used by
the ``grodt forensics`` command and the tearsheet.
"""
