"""The run layer: config, command line, assembly, train, evaluate, resume, checkpoints."""
