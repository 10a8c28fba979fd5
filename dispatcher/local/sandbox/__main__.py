"""``python -m dispatcher.local.sandbox``: run the sandbox of both gateways on one port.

Prints exactly one line on stdout once listening (``sandbox listening on URL``);
everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from dispatcher.local.sandbox.config import initial_config
from dispatcher.local.sandbox.server import serve
from dispatcher.logs import configure


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (same options as ``sms-dispatch sandbox``)."""
    parser = argparse.ArgumentParser(prog="python -m dispatcher.local.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8800, help="port; 0 picks a free one (default 8800)")
    parser.add_argument("--config", help="JSON file merged over the defaults (see config/sandbox.example.json)")
    parser.add_argument("--time-scale", type=float, default=None,
                        help="multiply the vendors' push retry and audit delays (0.001 turns 5 min into 0.3 s)")
    parser.add_argument("--log-level", default="INFO", help="stderr log level (default INFO)")
    return parser.parse_args(argv)


def _ready(url: str) -> None:
    sys.stdout.write(f"sandbox listening on {url}\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Run the sandbox until SIGTERM/SIGINT; return the exit status (0 on a clean stop)."""
    args = parse_args(argv)
    configure(args.log_level)
    try:
        raw = initial_config(args.config, args.time_scale)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        sys.stderr.write(f"sandbox: bad config: {exc}\n")
        return 2
    try:
        asyncio.run(serve(args.host, args.port, raw, _ready))
    except OSError as exc:
        sys.stderr.write(f"sandbox: cannot listen on {args.host}:{args.port}: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
