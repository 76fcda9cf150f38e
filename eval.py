"""Evaluate a checkpoint on its test split.

python eval.py ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt
"""

from objectives.run.evaluate import main

if __name__ == "__main__":
    main()
