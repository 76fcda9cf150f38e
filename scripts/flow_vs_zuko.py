"""Our RealNVP beside zuko's on the ring of 8 Gaussians (σ = 0.1), and the exact density.

    python scripts/flow_vs_zuko.py                       # experiment=ring_flow's size, 3 seeds
    python scripts/flow_vs_zuko.py --epochs 30 --layers 4 --hidden 32 32 --seeds 0
    python scripts/flow_vs_zuko.py --experiment gaussian2d_flow --layers 4 --hidden 32 32 \
        --epochs 40 --lr 0.003      # a density both can fit exactly (tests/test_flow_vs_zuko.py)

Both flows get the same training rows, batch size, number of steps, Adam learning rate,
coupling layers and hidden units (alternating masks, ReLU MLP conditioners) and seed;
each is judged by its last weights on the same test rows. A RealNVP's NLL on the ring
moves by ±0.1 nats from seed to seed, so the two are compared by their mean over seeds.
Printed as a markdown table: the test NLL of each (nats a row) for each seed, the exact
mixture's NLL of those rows, and the wall time. Ours
runs through `train(cfg)` exactly as `python train.py experiment=ring_flow` would
(callbacks off, logs in a temporary folder); zuko's in a plain loop.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from objectives.run.assemble import assemble  # noqa: E402
from objectives.run.cli import register_resolvers  # noqa: E402
from objectives.run.config import config_dir  # noqa: E402
from objectives.run.train import train  # noqa: E402


def config(args: argparse.Namespace, out: Path, model: str = "realnvp", seed: int = 0):
    register_resolvers()
    GlobalHydra.instance().clear()
    hidden = "[" + ",".join(str(h) for h in args.hidden) + "]"
    overrides = [
        f"experiment={args.experiment}", f"model={model}", f"model.layers={args.layers}",
        f"model.hidden={hidden}", f"trainer.max_epochs={args.epochs}", f"seed={seed}",
        f"optimizer.lr={args.lr}", f"torch_threads={args.threads}", "callbacks=none",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        f"paths.output_dir={out}",
    ]  # fmt: skip
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("train", overrides=overrides)


def ours(args: argparse.Namespace, out: Path, model: str, seed: int) -> dict[str, float]:
    start = time.perf_counter()
    metrics = train(config(args, out / f"{model}-{seed}", model, seed))
    return {"nll": metrics["test/nll"], "true": metrics["test/true_nll"],
            "seconds": time.perf_counter() - start}  # fmt: skip


def theirs(args: argparse.Namespace, out: Path, seed: int) -> dict[str, float]:
    """zuko's RealNVP on the very rows and batch size of ours, as many steps."""
    import zuko  # the comparison's alone: not a dependency of the project

    cfg = config(args, out / f"zuko-{seed}", seed=seed)
    data = assemble(cfg).datamodule
    data.setup("fit")
    train_x, test_x = data.split("train")[0], data.split("test")[0]
    torch.manual_seed(seed)
    features = train_x.shape[1]
    flow = zuko.flows.RealNVP(features, transforms=args.layers, hidden_features=tuple(args.hidden))
    optimizer = torch.optim.Adam(flow.parameters(), lr=args.lr)
    batch, generator = cfg.data.batch_size, torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(args.epochs):
        order = torch.randperm(len(train_x), generator=generator)
        for i in range(len(train_x) // batch):  # whole batches only, as data.drop_last=true
            loss = -flow().log_prob(train_x[order[i * batch : (i + 1) * batch]]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        nll = float(-flow().log_prob(test_x).mean())
    true = float(-instantiate(cfg.task.reference)(test_x).mean())
    steps = args.epochs * (len(train_x) // batch)
    return {"nll": nll, "true": true, "seconds": time.perf_counter() - start, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="ring_flow", help="a flow recipe with a reference")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--spline", action="store_true", help="also model=spline_flow")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, for both")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # small networks: more threads only contend
    flows = {"ours: realnvp": lambda out, seed: ours(args, out, "realnvp", seed),
             "zuko: RealNVP": lambda out, seed: theirs(args, out, seed)}  # fmt: skip
    if args.spline:
        flows["ours: spline_flow"] = lambda out, seed: ours(args, out, "spline_flow", seed)
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in flows}
    with tempfile.TemporaryDirectory() as scratch:
        for seed in args.seeds:
            for name, fit in flows.items():
                rows[name].append(fit(Path(scratch), seed))
    steps = rows["zuko: RealNVP"][0]["steps"]
    print(f"\n{args.experiment}: {args.layers} couplings, hidden {args.hidden}, "
          f"{args.epochs} epochs ({steps} steps), lr {args.lr}, seeds {args.seeds}\n")  # fmt: skip
    print("| flow | seed | test NLL (nats) | exact NLL, same rows | gap | seconds |")
    print("|---|---|---|---|---|---|")
    for name, runs in rows.items():
        for seed, row in zip(args.seeds, runs, strict=True):
            nll, true = row["nll"], row["true"]
            print(f"| {name} | {seed} | {nll:.4f} | {true:.4f} | {nll - true:.4f} | "
                  f"{row['seconds']:.0f} |")  # fmt: skip
    means = {name: sum(r["nll"] for r in runs) / len(runs) for name, runs in rows.items()}
    for name, mean in means.items():
        print(f"\nmean test NLL, {name}: {mean:.4f}", end="")
    print(f"\nours − zuko's (means): {means['ours: realnvp'] - means['zuko: RealNVP']:+.4f} nats")


if __name__ == "__main__":
    main()
