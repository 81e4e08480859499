"""One module per experiment family: each stage is a function of params and input artifacts that writes artifacts and metrics."""
