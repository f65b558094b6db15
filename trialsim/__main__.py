"""``python -m trialsim`` runs the command line."""

from trialsim.cli import main

main()
