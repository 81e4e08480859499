"""The catalogue: every name of the pipeline in one torch-free place.

Stage families and names, artifact paths, experiment ids, training sets and recipes, published figures
and the typed params schema live here, so that the stages, the report, the CLI, the app and ``dvc.yaml``
all read them from one home. Nothing in this package imports torch (a test checks).
"""
