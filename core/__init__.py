"""The layer ``datasets`` and ``methods`` both sit on: task kinds (loss and metrics declared
together) and typed option parsing. It imports nothing from the rest of the project."""
