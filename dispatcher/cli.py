"""The ``sms-dispatch`` command line (click comes with Celery)."""

from __future__ import annotations

import json
import sys

import click

from dispatcher.segments import domestic_segments, international_segments


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Send SMS through opass and aiofish with Celery workers; run a local sandbox of both."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8800, show_default=True, type=int, help="Port; 0 picks a free one.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="JSON file with accounts, templates, limits, receipts (see config/sandbox.example.json).")
@click.option("--time-scale", type=float, default=None,
              help="Multiply the vendors' push retry delays (e.g. 0.001 turns 5 min into 0.3 s).")
def sandbox(host: str, port: int, config_path: str | None, time_scale: float | None) -> None:
    """Serve both gateways (opass + aiofish) at their real paths on one port.

    Demo credentials and the /_sandbox/ control API are in the README.
    """
    from dispatcher.sandbox.__main__ import main as sandbox_main

    argv = ["--host", host, "--port", str(port)]
    if config_path:
        argv += ["--config", config_path]
    if time_scale is not None:
        argv += ["--time-scale", str(time_scale)]
    sys.exit(sandbox_main(argv))


@main.command()
@click.argument("text")
@click.option("--international", is_flag=True, help="Use the international rules (GSM-7 160/153).")
def segments(text: str, international: bool) -> None:
    """Show how many billed parts TEXT takes, and their sizes."""
    seg = international_segments(text) if international else domestic_segments(text)
    click.echo(json.dumps({"encoding": seg.encoding, "units": seg.units, "parts": list(seg.parts),
                           "count": seg.count}))
