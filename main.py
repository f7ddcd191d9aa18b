"""Entry point: ``python main.py --config agent.yaml`` (see README.md)."""

import sys

from runtime.cli import main

if __name__ == "__main__":
    sys.exit(main())
