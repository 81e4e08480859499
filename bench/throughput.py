"""Throughput (images/s) of a PGD step and of a training step, advtui's PGD side by side with torchattacks.

Per model, on one random batch (the same tensors for every measurement of that model):

1. PGD: ``advtui.attacks.pgd.pgd_attack`` against ``torchattacks.PGDL2`` / ``torchattacks.PGD`` on the same
   model instance, with the same eps, step size, step count and a random start, in this process; the two
   run alternately, repeat after repeat, so a change in machine load hits both. images/s = batch * steps / s.
   As a sanity check both attacks' robust accuracy is reported; the labels are the model's own predictions,
   so the clean accuracy is 100% and the robust accuracy is the share of predictions an attack fails to flip.
2. Training: one optimiser step (forward, backward, SGD with the TrainConfig defaults), standard
   (``supervised_step(None)``) and PGD-7 adversarial (``supervised_step(AdversarialConfig("l2", 0.5, 7, 0.125))``).
   images/s = batch / s.

Every figure is the median of ``--repeats`` timed runs after an untimed warm-up. Run by hand:
``.venv/bin/python bench/throughput.py [--models small_cnn resnet18] [--json results.json]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torchattacks
from rich import box
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn

import advtui
from advtui.attacks.pgd import pgd_attack
from advtui.models.registry import create_model, list_models
from advtui.paradigms.supervised import supervised_step
from advtui.catalog.training import AdversarialConfig
from advtui.paradigms.trainer import StepFn
from advtui.catalog.training import TrainConfig
from advtui.runtime import pick_device

# (batch, PGD steps) per model when --batch / --steps are not given: ResNet-18 at 32 px runs at ~10-30
# images/s on 2 CPU cores, so it gets a smaller batch and fewer steps to keep the default run near 5 minutes.
DEFAULTS: dict[str, tuple[int, int]] = {"small_cnn": (128, 10), "resnet18": (32, 3)}
FALLBACK_DEFAULT = (32, 3)

# The usual CIFAR-10 settings (Madry et al.; Ilyas et al. use L2 eps 0.5); the step sizes suit 10 steps.
ATTACKS: dict[str, tuple[float, float]] = {"l2": (0.5, 0.1), "linf": (8 / 255, 2 / 255)}
TRAIN_ADV = AdversarialConfig("l2", 0.5, 7, 0.125)
PARTS = ("pgd", "train")


@dataclass
class PgdResult:
    """PGD throughput of advtui and torchattacks on one model, norm and batch."""

    model: str
    norm: str
    batch: int
    steps: int
    eps: float
    step_size: float
    advtui_images_per_s: float
    torchattacks_images_per_s: float
    advtui_robust_acc: float
    torchattacks_robust_acc: float
    advtui_seconds: list[float]
    torchattacks_seconds: list[float]


@dataclass
class TrainResult:
    """Optimiser-step throughput of one model, standard and PGD-7 adversarial."""

    model: str
    batch: int
    standard_images_per_s: float
    adversarial_images_per_s: float
    standard_seconds: list[float]
    adversarial_seconds: list[float]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Tensor | None], device: torch.device) -> tuple[float, Tensor | None]:
    """Wall-clock seconds of ``fn()`` (device work included) and its result."""
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


@torch.no_grad()
def robust_accuracy(model: nn.Module, x_adv: Tensor, y: Tensor) -> float:
    """Share of ``x_adv`` that ``model`` (in eval mode) still labels ``y``."""
    model.eval()
    return (model(x_adv).argmax(1) == y).float().mean().item()


def pgd_runners(
    model: nn.Module, x: Tensor, y: Tensor, norm: str, steps: int
) -> dict[str, Callable[[], Tensor]]:
    """advtui's and torchattacks' PGD with the same settings (random start on), each a call returning x_adv."""
    eps, step_size = ATTACKS[norm]
    cls = torchattacks.PGDL2 if norm == "l2" else torchattacks.PGD
    theirs = cls(model, eps=eps, alpha=step_size, steps=steps, random_start=True)
    return {
        "advtui": lambda: pgd_attack(model, x, y, norm=norm, eps=eps, step_size=step_size, steps=steps),
        "torchattacks": lambda: theirs(x, y),
    }


def bench_pgd(
    name: str, model: nn.Module, x: Tensor, y: Tensor, norm: str, steps: int, repeats: int, device: torch.device
) -> PgdResult:
    """Time advtui's ``pgd_attack`` and torchattacks' PGD alternately on the same model and batch."""
    # One-step warm-up: builds the kernels and allocator pools for these shapes at a fraction of a full run.
    for run in pgd_runners(model, x, y, norm, 1).values():
        timed(run, device)
    runners = pgd_runners(model, x, y, norm, steps)
    seconds: dict[str, list[float]] = {who: [] for who in runners}
    x_adv: dict[str, Tensor] = {}
    for rep in range(repeats):
        # Alternate who goes first, so neither always runs right after the other's memory traffic.
        order = list(runners) if rep % 2 == 0 else list(runners)[::-1]
        for who in order:
            t, x_adv[who] = timed(runners[who], device)
            seconds[who].append(t)
    work = x.shape[0] * steps
    eps, step_size = ATTACKS[norm]
    return PgdResult(
        model=name, norm=norm, batch=x.shape[0], steps=steps, eps=eps, step_size=step_size,
        advtui_images_per_s=work / statistics.median(seconds["advtui"]),
        torchattacks_images_per_s=work / statistics.median(seconds["torchattacks"]),
        advtui_robust_acc=robust_accuracy(model, x_adv["advtui"], y),
        torchattacks_robust_acc=robust_accuracy(model, x_adv["torchattacks"], y),
        advtui_seconds=seconds["advtui"], torchattacks_seconds=seconds["torchattacks"],
    )


def bench_train(name: str, model: nn.Module, x: Tensor, y: Tensor, repeats: int, device: torch.device) -> TrainResult:
    """Time one SGD step (forward, backward, update), standard and PGD-7 adversarial, on the same batch."""
    cfg = TrainConfig()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)

    def one_step(step_fn: StepFn) -> Callable[[], None]:
        def run() -> None:
            model.train()
            out = step_fn(model, x, y)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()

        return run

    standard, adversarial = one_step(supervised_step(None)), one_step(supervised_step(TRAIN_ADV))
    # The adversarial step is PGD plus a standard step: a standard step and a one-step attack warm up
    # both at a fraction of a full PGD-7 step, the slowest thing measured here.
    timed(standard, device)
    a = TRAIN_ADV
    timed(lambda: pgd_attack(model, x, y, norm=a.norm, eps=a.eps, step_size=a.effective_step_size, steps=1), device)
    t_std: list[float] = []
    t_adv: list[float] = []
    for _ in range(repeats):
        # Interleaved, so a change in machine load shows in both columns rather than skewing their ratio.
        t_std.append(timed(standard, device)[0])
        t_adv.append(timed(adversarial, device)[0])
    return TrainResult(
        model=name, batch=x.shape[0],
        standard_images_per_s=x.shape[0] / statistics.median(t_std),
        adversarial_images_per_s=x.shape[0] / statistics.median(t_adv),
        standard_seconds=t_std, adversarial_seconds=t_adv,
    )


def machine_info(device: torch.device) -> dict[str, object]:
    """What the numbers depend on: versions, threads, CPU/GPU, and the load average when called."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "torchattacks": torchattacks.__version__,
        "advtui": advtui.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_start": list(os.getloadavg()),
    }


def _pixels(value: float, norm: str) -> str:
    """A radius or step as written in the papers: Linf in 1/255 units, L2 as is."""
    return f"{value * 255:g}/255" if norm == "linf" else f"{value:g}"


def render(console: Console, info: dict[str, object], pgd: list[PgdResult], train: list[TrainResult]) -> None:
    """Print the machine line and the result tables."""
    console.print(
        f"[bold]{info['date']}[/]  torch {info['torch']}  torchattacks {info['torchattacks']}  "
        f"device {info['device']}{' (' + str(info['gpu']) + ')' if info['gpu'] else ''}  cpu {info['cpu']} "
        f"x{info['cpu_count']}  torch threads {info['torch_threads']}  "
        f"load avg (1 min) {info['loadavg_start'][0]:.2f} -> {info['loadavg_end'][0]:.2f}"
    )
    if pgd:
        table = Table(title="PGD step throughput (images/s = batch x steps / s; median)", box=box.SIMPLE_HEAD)
        for col in ("model", "norm", "eps, step", "batch x steps", "advtui", "torchattacks", "ratio",
                    "rob. acc advtui", "rob. acc ta"):
            table.add_column(col, justify="left" if col in ("model", "norm", "eps, step") else "right")
        for r in pgd:
            table.add_row(
                r.model, r.norm, f"{_pixels(r.eps, r.norm)}, {_pixels(r.step_size, r.norm)}",
                f"{r.batch} x {r.steps}", f"{r.advtui_images_per_s:.1f}", f"{r.torchattacks_images_per_s:.1f}",
                f"{r.advtui_images_per_s / r.torchattacks_images_per_s:.2f}",
                f"{r.advtui_robust_acc:.1%}", f"{r.torchattacks_robust_acc:.1%}",
            )
        console.print(table)
    if train:
        table = Table(title="Training step throughput (images/s = batch / s per SGD step; median)", box=box.SIMPLE_HEAD)
        for col in ("model", "batch", "standard", f"PGD-{TRAIN_ADV.steps} {TRAIN_ADV.norm} AT", "slow-down"):
            table.add_column(col, justify="left" if col == "model" else "right")
        for t in train:
            table.add_row(
                t.model, str(t.batch), f"{t.standard_images_per_s:.1f}", f"{t.adversarial_images_per_s:.1f}",
                f"{t.standard_images_per_s / t.adversarial_images_per_s:.1f}x",
            )
        console.print(table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["small_cnn", "resnet18"], help="registry names")
    per_model = ", ".join(f"{m} {b} x {n}" for m, (b, n) in DEFAULTS.items())
    fallback = f"others {FALLBACK_DEFAULT[0]} x {FALLBACK_DEFAULT[1]}"
    p.add_argument("--batch", type=int, default=None,
                   help=f"batch size for every model (default per model, batch x PGD steps: {per_model}, {fallback})")
    p.add_argument("--steps", type=int, default=None, help="PGD steps for every model (default per model, see --batch)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to measure")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per figure; the median is reported")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, batch and random starts")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    unknown = [m for m in args.models if m not in list_models()]
    if unknown:
        p.error(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(list_models())}")
    for flag in ("batch", "steps", "repeats", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            p.error(f"--{flag}: must be >= 1, got {value}")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark for every requested model, print the tables, optionally save JSON."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    # Piped output (a log, the README) gets a fixed width wide enough for the tables instead of 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 120)
    info = machine_info(device)
    pgd_results: list[PgdResult] = []
    train_results: list[TrainResult] = []
    for name in args.models:
        default_batch, default_steps = DEFAULTS.get(name, FALLBACK_DEFAULT)
        batch, steps = args.batch or default_batch, args.steps or default_steps
        torch.manual_seed(args.seed)
        model = create_model(name, num_classes=10, img_size=32).to(device).eval()
        x = torch.rand(batch, 3, 32, 32, device=device)
        with torch.no_grad():
            y = model(x).argmax(1)
        for norm in ATTACKS if "pgd" in args.parts else ():
            with console.status(f"{name}: PGD {norm}, batch {batch}, {steps} steps"):
                pgd_results.append(bench_pgd(name, model, x, y, norm, steps, args.repeats, device))
            r = pgd_results[-1]
            console.log(f"{name} PGD {norm}: advtui {r.advtui_images_per_s:.1f}, "
                        f"torchattacks {r.torchattacks_images_per_s:.1f} images/s")
        if "train" in args.parts:
            with console.status(f"{name}: training steps, batch {batch}"):
                train_results.append(bench_train(name, model, x, y, args.repeats, device))
            t = train_results[-1]
            console.log(f"{name} training: standard {t.standard_images_per_s:.1f}, "
                        f"PGD-{TRAIN_ADV.steps} {t.adversarial_images_per_s:.1f} images/s")
    info["loadavg_end"] = list(os.getloadavg())
    render(console, info, pgd_results, train_results)
    if args.json is not None:
        payload = {
            "machine": info,
            "settings": {
                "parts": args.parts, "repeats": args.repeats, "seed": args.seed, "train_adversarial": asdict(TRAIN_ADV),
            },
            "pgd": [asdict(r) for r in pgd_results],
            "train": [asdict(r) for r in train_results],
        }
        args.json.write_text(json.dumps(payload, indent=2))
        console.print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
