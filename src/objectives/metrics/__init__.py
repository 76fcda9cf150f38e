"""Metrics of learned representations and of generators; import each from the submodule
that holds it, so a task pays only for the metrics it uses (the contrastive task's k-NN
never loads the digits classifier, torchmetrics' FID or matplotlib)."""
