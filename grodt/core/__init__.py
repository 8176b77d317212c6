"""The floor: what every other package of the project may import, and which imports none of them.

- :mod:`grodt.core.errors`: the exception types that carry a user-facing message;
- :mod:`grodt.core.settings`: ``GRODT_*`` environment settings;
- :mod:`grodt.core.topics`: every message-bus topic the project publishes or listens on;
- :mod:`grodt.core.messages`: bus messages between actors and strategies (Nautilus custom data);
- :mod:`grodt.core.records`: forensics record contracts (decisions, verdicts, allocations, regimes).

The layers above it are listed in ``docs/architecture.md`` and checked by ``make lint``.
"""
