"""Evaluate a checkpoint on the test split: `python eval.py ckpt_path=<run>/checkpoints/last.ckpt`."""

from objectives.evaluate import main

if __name__ == "__main__":
    main()
