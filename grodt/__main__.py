"""``python -m grodt``: the ``grodt`` command, from any environment that can import grodt."""

from grodt.cli import main

if __name__ == "__main__":
    main()
