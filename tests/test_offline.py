"""No network at run time: importing devolens and everything a training run or a prediction uses makes no
connection (albumentations 2.x asks PyPI for a newer release on import unless told not to)."""

from __future__ import annotations

import os
import subprocess
import sys

SPY = r"""
import socket
calls = []
def refuse(*args, **kwargs):
    calls.append(args[:1])
    raise OSError("no network in this test")
socket.getaddrinfo = refuse
socket.create_connection = refuse
socket.socket.connect = lambda self, address: refuse(address)
import devolens
from devolens.data.augment import build_augment
from devolens.models import load
from devolens.train.trainer import train
build_augment("nuclei", 1.0)
load("nuclei")
print("calls", calls)
"""


def test_importing_and_building_makes_no_connection():
    env = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}
    proc = subprocess.run([sys.executable, "-c", SPY], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "calls []" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert "Error fetching version info" not in proc.stderr
