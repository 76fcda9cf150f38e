"""Run a trained model on new inputs.

python predict.py ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt input=new.csv
"""

from objectives.run.predict import main

if __name__ == "__main__":
    main()
