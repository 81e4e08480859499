"""What dvc.yaml runs: the stage functions behind `advtui stage`, and their progress files."""
