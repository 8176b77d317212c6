"""Example strategies for researchers (``docs/strategies.md``, "Write your own strategy")."""
