"""Write a checkpoint's network as ONNX or TorchScript, checked, with a JSON sidecar.

python export.py ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt format=onnx
"""

from objectives.run.export import main

if __name__ == "__main__":
    main()
