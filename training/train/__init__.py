"""NPP training: the rate–distortion loss, deterministic batches, and the resumable loop."""
