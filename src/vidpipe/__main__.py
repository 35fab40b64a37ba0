"""`python -m vidpipe` is the `vidpipe` command."""

from .cli import main

main(prog_name="vidpipe")
