"""What the tasks hand their values to: epoch means, deferred per-step values, writers."""
