"""`python -m trame_bot` is `trame-bot`."""

from trame_bot.cli import main

main()
