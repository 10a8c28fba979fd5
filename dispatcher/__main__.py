"""``python -m dispatcher`` runs the ``sms-dispatch`` command line."""

from dispatcher.cli import main

main()
