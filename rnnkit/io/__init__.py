"""Saving and loading: arrays as safetensors, everything else as JSON; never pickle."""

from rnnkit.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["CheckpointError", "load_checkpoint", "save_checkpoint"]
