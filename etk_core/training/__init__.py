"""The core training loop and what it needs: batching, checkpoints, evaluation."""
