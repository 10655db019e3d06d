"""One module per subcommand (``opsconsole NAME …``): each gives ``add_parser`` and ``run``.

console.cli lists them in COMMAND_MODULES; a command imports its backends inside ``run``,
so ``--help`` and the other commands never pay for them.
"""
