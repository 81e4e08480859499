"""``python -m advtui ...``: the ``advtui`` command where the package is not installed (a copied checkout on a
GPU machine, ``bench/gpu_fast.py``)."""

from advtui.cli.main import app

app(prog_name="advtui")
