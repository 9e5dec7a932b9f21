"""``python -m xueliang.gateway`` is the ``xueliang`` command."""

from xueliang.gateway.cli import main

main()
