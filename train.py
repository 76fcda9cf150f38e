"""Train a model by its objective: `python train.py loss=huber regularizer=[l1,l2]`."""

from objectives.run.train import main

if __name__ == "__main__":
    main()
