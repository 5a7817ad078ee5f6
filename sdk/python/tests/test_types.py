"""The package is typed (py.typed) and its annotations hold under mypy --strict."""

from __future__ import annotations

import os
import subprocess
import sys

import credgate

SRC = os.path.join(os.path.dirname(__file__), "..", "src", "credgate")


def test_the_package_ships_its_types():
    assert os.path.exists(os.path.join(os.path.dirname(credgate.__file__), "py.typed"))


def test_mypy_strict_passes():
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", SRC], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
