"""Model passes of the robust-accuracy evaluation: the active set (a point leaves the batch once broken) against
fixed-k PGD, and AutoAttack's attacks chained on the points still standing against each run on every point.

Three small_cnn classifiers, trained briefly on the synthetic data with the smoke profile's recipe
(``sources.train``, ``--epochs``):

- ``pattern-only``: trained on images that carry only the planted non-robust pattern (``robust_amplitude`` 0),
  so, like the E4 models trained on D_NR or D_rand, it reads the pattern alone and most points break within a
  few steps;
- ``standard``: trained on natural synthetic images (with the standard source's input noise);
- ``robust_l2``: PGD adversarially trained as E1's ``robust_l2`` (L2 eps 1.0).

Each is evaluated on ``--n`` natural test images under the smoke profile's ``attack.l2`` and ``attack.linf``
(``--steps`` overrides the PGD step count) through the evaluation's own driver
(``advtui.attacks.driver.attack_standing``), once with ``PgdChunks(active_set=False)`` (fixed-k: every point
attacked runs every step) and once with the active set (the default), same seeds. A counting wrapper around
the model counts the images through it: gradient passes (a forward and a backward, the attack steps) and
forward-only passes (the clean check, the verdict). "passes" = forward-only + 2 x gradient. The two runs must
find the same robust points; the script says so per row.

AutoAttack (``--aa-n`` points, ``--aa-attacks`` of the standard version at Linf ``attack.linf``'s eps): the
driver's chain (each of the package's attacks on the points the ones before left standing, as AutoAttack does)
against one driver run per attack on every clean-correct point, whose per-point worst case is the same
evaluation without the chain. Their accuracies can differ by a point or two: the package's random starts are
drawn per batch, and the batches differ.

Run by hand (about 10 minutes on a busy 2-core CPU with ``--threads 1``):
``.venv/bin/python bench/active_set.py [--threads 1] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

import torch
from rich import box
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn

from advtui.attacks.autoattack import AutoAttackChunks
from advtui.attacks.driver import ChunkAttack, RobustResult, attack_standing
from advtui.attacks.robust_accuracy import PgdChunks
from advtui.catalog.params import Params, load_params, profile_path
from advtui.catalog.training import AdversarialConfig
from advtui.experiments.common import natural_split
from advtui.models.registry import create_model
from advtui.paradigms.supervised import train_classifier

MODELS = ("pattern-only", "standard", "robust_l2")
AA_ATTACKS = ("apgd-ce", "apgd-t")


class Counting(nn.Module):
    """``model`` that counts the images it sees: with a gradient to the input (a backward pass follows) or not."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.gradient = 0
        self.forward_only = 0

    def forward(self, x: Tensor) -> Tensor:
        """``model(x)``, counted."""
        if torch.is_grad_enabled() and x.requires_grad:
            self.gradient += x.shape[0]
        else:
            self.forward_only += x.shape[0]
        return self.model(x)

    def take(self) -> dict[str, int]:
        """The counts so far ("passes" = forward-only + 2 x gradient), and reset them."""
        counts = {"gradient": self.gradient, "forward_only": self.forward_only,
                  "passes": self.forward_only + 2 * self.gradient}
        self.gradient = self.forward_only = 0
        return counts


def train(kind: str, params: Params, *, train_size: int, epochs: int, seed: int, workdir: Path) -> nn.Module:
    """A small_cnn trained as ``kind`` (see the module docstring) with the smoke recipe for ``epochs``."""
    data = dataclasses.replace(params.data, train_size=train_size)
    if kind == "pattern-only":
        data = dataclasses.replace(data, synthetic=dataclasses.replace(data.synthetic, robust_amplitude=0.0))
    source = params.sources.model("standard" if kind != "robust_l2" else "robust_l2")
    recipe = dataclasses.replace(params.sources.train, epochs=epochs, augment=dataclasses.replace(
        params.sources.train.augment, noise_std=source.noise_std))
    images = natural_split(data, "train", seed)
    torch.manual_seed(seed)
    model = create_model("small_cnn", num_classes=images.num_classes, img_size=int(images.images.shape[-1]))
    adversarial = source.adversarial if kind == "robust_l2" else AdversarialConfig()
    train_classifier(model, images, recipe, adversarial, checkpoint=workdir / f"{kind}.ckpt", device="cpu",
                     seed=seed, progress=False)
    return model.eval()


def evaluate(model: Counting, x: Tensor, y: Tensor, attacks: list[ChunkAttack], seed: int) -> tuple[RobustResult, dict]:
    """One driver run (batch 256, as the smoke profile's evaluations) and its counts."""
    model.take()
    result = attack_standing(model, x, y, attacks, batch_size=256, seed=seed)
    return result, model.take()


def bench_pgd(name: str, model: Counting, x: Tensor, y: Tensor, params: Params, steps: int | None, seed: int) -> list[dict]:
    """Fixed-k against active-set PGD under the profile's L2 and Linf attacks."""
    rows = []
    for spec in (params.attack.l2, params.attack.linf):
        spec = dataclasses.replace(spec, steps=steps or spec.steps)
        runs = {mode: evaluate(model, x, y, [PgdChunks(model, spec, spec.name, active_set=mode == "active set")], seed)
                for mode in ("fixed-k", "active set")}
        (fixed, fixed_work), (active, active_work) = runs["fixed-k"], runs["active set"]
        rows.append({
            "model": name, "attack": spec.name, "clean_acc": fixed.clean_acc,
            "robust_acc": {"fixed-k": fixed.robust_acc, "active set": active.robust_acc},
            "same_points": bool(torch.equal(fixed.robust, active.robust)),
            "work": {"fixed-k": fixed_work, "active set": active_work},
        })
    return rows


def bench_autoattack(name: str, model: Counting, x: Tensor, y: Tensor, eps: float, attacks: tuple[str, ...], seed: int) -> dict:
    """AutoAttack's ``attacks`` chained by the driver against one driver run per attack on every clean-correct point."""

    def adapter(chosen: tuple[str, ...]) -> AutoAttackChunks:
        return AutoAttackChunks(model, name="aa", norm="linf", eps=eps, version="standard", device=torch.device("cpu"),
                                attacks=chosen, recheck_clean=False)

    chained, chained_work = evaluate(model, x, y, [adapter(attacks)], seed)
    separate = [evaluate(model, x, y, [adapter((a,))], seed) for a in attacks]
    robust = torch.stack([r.robust for r, _ in separate]).all(0)
    work = {k: sum(w[k] for _, w in separate) for k in chained_work}
    return {
        "model": name, "attacks": list(attacks), "eps": eps, "clean_acc": chained.clean_acc,
        "robust_acc": {"chained": chained.robust_acc, "each on every point": robust.float().mean().item()},
        "per_attack_chained": chained.per_part["aa"],
        "work": {"chained": chained_work, "each on every point": work},
    }


def render(console: Console, info: dict, pgd: list[dict], aa: list[dict]) -> None:
    """Print the machine line and the two tables."""
    console.print(f"[bold]{info['date']}[/]  torch {info['torch']}  torch threads {info['threads']}  n {info['n']}  "
                  f"load avg (1 min) {info['loadavg_start'][0]:.2f} -> {info['loadavg_end'][0]:.2f}")
    table = Table(title="PGD: fixed-k against the active set (passes = forward-only + 2 x gradient)", box=box.SIMPLE_HEAD)
    for col in ("model", "attack", "clean", "robust fixed-k", "robust active", "same points", "passes fixed-k",
                "passes active", "fewer"):
        table.add_column(col, justify="left" if col in ("model", "attack") else "right")
    for r in pgd:
        w = r["work"]
        table.add_row(
            r["model"], r["attack"], f"{r['clean_acc']:.1%}", f"{r['robust_acc']['fixed-k']:.1%}",
            f"{r['robust_acc']['active set']:.1%}", "yes" if r["same_points"] else "NO", str(w["fixed-k"]["passes"]),
            str(w["active set"]["passes"]), f"{w['fixed-k']['passes'] / w['active set']['passes']:.1f}x",
        )
    console.print(table)
    if aa:
        table = Table(title="AutoAttack: the driver's chain against each attack on every clean-correct point",
                      box=box.SIMPLE_HEAD)
        for col in ("model", "attacks", "clean", "robust chained", "robust each", "passes chained", "passes each",
                    "fewer"):
            table.add_column(col, justify="left" if col in ("model", "attacks") else "right")
        for r in aa:
            w = r["work"]
            table.add_row(
                r["model"], " + ".join(r["attacks"]), f"{r['clean_acc']:.1%}", f"{r['robust_acc']['chained']:.1%}",
                f"{r['robust_acc']['each on every point']:.1%}", str(w["chained"]["passes"]),
                str(w["each on every point"]["passes"]),
                f"{w['each on every point']['passes'] / w['chained']['passes']:.1f}x",
            )
        console.print(table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="which classifiers to train and attack")
    p.add_argument("--train-size", type=int, default=2000, help="synthetic training images")
    p.add_argument("--epochs", type=int, default=2, help="training epochs (the smoke recipe otherwise)")
    p.add_argument("--n", type=int, default=500, help="natural test images attacked by PGD")
    p.add_argument("--steps", type=int, default=None, help="PGD steps (default: the smoke profile's attack settings)")
    p.add_argument("--aa-n", type=int, default=100, help="test images attacked by AutoAttack (0: skip AutoAttack)")
    p.add_argument("--aa-attacks", nargs="+", default=list(AA_ATTACKS),
                   choices=("apgd-ce", "apgd-t", "fab-t", "square"), help="AutoAttack's attacks, in its order")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, the training and the attacks")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    for flag in ("train_size", "epochs", "n", "steps", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            p.error(f"--{flag.replace('_', '-')}: must be >= 1, got {value}")
    if args.aa_n < 0:
        p.error(f"--aa-n: must be >= 0, got {args.aa_n}")
    return args


def main(argv: list[str] | None = None) -> None:
    """Train the classifiers, count the evaluations' passes, print the tables, optionally save JSON."""
    import datetime as dt

    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    console = Console(width=None if sys.stdout.isatty() else 150)
    params = load_params(profile_path("smoke"))
    info = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "n": args.n, "loadavg_start": list(os.getloadavg())}
    test = natural_split(params.data, "test", args.seed)
    x, y = test.float_images()[: args.n], test.labels[: args.n]
    aa_order = tuple(a for a in ("apgd-ce", "apgd-t", "fab-t", "square") if a in args.aa_attacks)
    pgd_rows, aa_rows = [], []
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models:
            with console.status(f"training {name}"):
                model = Counting(train(name, params, train_size=args.train_size, epochs=args.epochs, seed=args.seed,
                                       workdir=Path(workdir)))
            with console.status(f"{name}: PGD fixed-k and active set"):
                pgd_rows += bench_pgd(name, model, x, y, params, args.steps, args.seed)
            console.log(f"{name}: PGD done")
            if args.aa_n:
                with console.status(f"{name}: AutoAttack {' + '.join(aa_order)}"):
                    aa_rows.append(bench_autoattack(name, model, x[: args.aa_n], y[: args.aa_n], params.attack.linf.eps,
                                                    aa_order, args.seed))
                console.log(f"{name}: AutoAttack done")
    info["loadavg_end"] = list(os.getloadavg())
    render(console, info, pgd_rows, aa_rows)
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": info, "settings": vars(args) | {"json": str(args.json)},
                                         "pgd": pgd_rows, "autoattack": aa_rows}, indent=2))
        console.print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
