"""What the project's management commands share."""

INTERRUPTED_EXIT_CODE = 130  # as a shell reports a command Ctrl-C stopped
