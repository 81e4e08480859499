"""Images and artifacts: the synthetic planted-feature generator and its ground-truth probes, image sources, the safetensors store."""
