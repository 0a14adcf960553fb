"""The Makefile's `install`, as a fresh machine runs it."""

import os
import subprocess
import sys
from pathlib import Path

from tests.support.celery_worker import PROJECT_DIR


def test_install_names_python3_venv_when_python_cannot_make_a_venv(tmp_path: Path) -> None:
    # Stock Debian and Ubuntu: `python3 -m venv` fails until the python3-venv package is in.
    python = tmp_path / "python3"
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then echo "ensurepip is not available" >&2;'
        " exit 1; fi\n"
        f'exec {sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    venv = tmp_path / "venv"

    result = subprocess.run(
        ["make", "--no-print-directory", "install", f"PYTHON={python}", f"VENV={venv}"],
        cwd=PROJECT_DIR,
        env={k: v for k, v in os.environ.items() if not k.startswith("MAKE")},
        capture_output=True,
        text=True,
    )

    assert result.returncode != 0
    assert "sudo apt install python3-venv" in result.stderr
    assert not (venv / ".installed").exists()
