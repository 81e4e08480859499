"""The terminal app's headless core: runs, pipeline state, live files, results, gallery file; no textual, no torch.

These modules are what the app (:mod:`advtui.tui`) shows, as plain data: detached ``dvc repro`` runs and
their records (``runs``, ``runwrap``), the stages of ``dvc.yaml`` and their state (``dvcstate``), ``dvc exp
show`` (``expshow``), the files a running stage writes (``live``), the report's tables (``resultsdata``) and
the gallery file (``galleryfile``). Screens and widgets stay in :mod:`advtui.tui`; a test checks that nothing
here imports textual or torch, so other front ends and tests use it alone.
"""
