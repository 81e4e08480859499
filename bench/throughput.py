"""Throughput (images/s) of a PGD step and of a training step, advtui's PGD side by side with torchattacks.

Per model, on one random batch (the same tensors for every measurement of that model):

1. PGD: ``torchattacks.PGDL2`` / ``torchattacks.PGD`` beside ``advtui.attacks.pgd.pgd_attack`` in each of
   ``VARIANTS``: with the final iterate scored (the pipeline's adversarial training and constructions) or not
   (the evaluations: torchattacks' work, one forward and one backward per step), plain, channels_last,
   torch.compile, both (``advtui.attacks.speed``; each on its own copy of the model, same weights). Same eps,
   step size, step count, random start; all run one after the other, repeat after repeat, in an order that
   alternates, so a change in machine load hits every one. images/s = batch * steps / s. The one-step
   warm-up before the timed runs builds the kernels, and compiles: its seconds are reported as the
   first-call cost. As a sanity check each attack's robust accuracy is reported; the labels are the
   model's own predictions, so the clean accuracy is 100% and the robust accuracy is the share of
   predictions an attack fails to flip. The table marks the variant ``attack.speed: auto`` picks here.
2. Training: one optimiser step (forward, backward, SGD with the TrainConfig defaults), standard
   (``supervised_step(None)``) and PGD-7 adversarial (``supervised_step(AdversarialConfig("l2", 0.5, 7, 0.125))``).
   images/s = batch / s.

Every figure is the median of ``--repeats`` timed runs after an untimed warm-up. Run by hand:
``.venv/bin/python bench/throughput.py [--models small_cnn resnet18] [--json results.json]``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
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
from advtui.attacks.speed import faster, resolve
from advtui.catalog.attacks import SpeedConfig
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
TORCHATTACKS = "torchattacks"
# advtui's PGD as measured: name -> (score_final, speed-ups). The first is what adversarial training and the
# constructions run (the final iterate scored, as the `robustness` library does); the others skip that
# forward pass, as the evaluations do.
VARIANTS: dict[str, tuple[bool, SpeedConfig]] = {
    "advtui, final scored": (True, SpeedConfig("off", "off")),
    "advtui": (False, SpeedConfig("off", "off")),
    "advtui channels_last": (False, SpeedConfig("on", "off")),
    "advtui compile": (False, SpeedConfig("off", "on")),
    "advtui compile + channels_last": (False, SpeedConfig("on", "on")),
}


@dataclass
class PgdResult:
    """PGD throughput of torchattacks and of advtui's variants on one model, norm and batch, by runner name."""

    model: str
    norm: str
    batch: int
    steps: int
    eps: float
    step_size: float
    auto: str
    images_per_s: dict[str, float]
    robust_acc: dict[str, float]
    first_call_s: dict[str, float]
    seconds: dict[str, list[float]]


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


def auto_variant(model: nn.Module, device: torch.device) -> str:
    """The variant that ``attack.speed: auto`` (``SpeedConfig()``) picks for ``model`` on ``device``."""
    chosen = resolve(SpeedConfig(), model, device)
    return next(name for name, (score_final, speed) in VARIANTS.items()
                if not score_final and (speed.channels_last == "on", speed.compile == "on") == (chosen.channels_last, chosen.compile))


def bench_pgd(
    name: str, model: nn.Module, x: Tensor, y: Tensor, norm: str, steps: int, repeats: int, device: torch.device,
    variants: list[str],
) -> PgdResult:
    """Time torchattacks' PGD and advtui's ``variants`` one after the other, repeat after repeat, on one batch."""
    eps, step_size = ATTACKS[norm]
    cls = torchattacks.PGDL2 if norm == "l2" else torchattacks.PGD
    with ExitStack() as stack:
        # Each variant attacks its own copy of the model (same weights): channels_last re-lays the copy's weights.
        attacked = {who: stack.enter_context(faster(copy.deepcopy(model), VARIANTS[who][1], device)) for who in variants}

        def runner(who: str, n_steps: int) -> Callable[[], Tensor]:
            if who == TORCHATTACKS:
                return lambda: cls(model, eps=eps, alpha=step_size, steps=n_steps, random_start=True)(x, y)
            return lambda: pgd_attack(attacked[who], x, y, norm=norm, eps=eps, step_size=step_size, steps=n_steps,
                                      score_final=VARIANTS[who][0])

        runners = [TORCHATTACKS, *variants]
        # One-step warm-up: builds the kernels and allocator pools for these shapes, and compiles.
        first_call = {who: timed(runner(who, 1), device)[0] for who in runners}
        seconds: dict[str, list[float]] = {who: [] for who in runners}
        x_adv: dict[str, Tensor] = {}
        for rep in range(repeats):
            # Alternate the order, so no runner always comes right after the same other one.
            for who in runners if rep % 2 == 0 else runners[::-1]:
                t, x_adv[who] = timed(runner(who, steps), device)
                seconds[who].append(t)
    work = x.shape[0] * steps
    return PgdResult(
        model=name, norm=norm, batch=x.shape[0], steps=steps, eps=eps, step_size=step_size,
        auto=auto_variant(model, device),
        images_per_s={who: work / statistics.median(t) for who, t in seconds.items()},
        robust_acc={who: robust_accuracy(model, adv, y) for who, adv in x_adv.items()},
        first_call_s=first_call, seconds=seconds,
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
        table = Table(title="PGD step throughput (images/s = batch x steps / s; median; * = what attack.speed: auto "
                            "picks here)", box=box.SIMPLE_HEAD)
        for col in ("model", "norm", "eps, step", "batch x steps", "attack", "images/s", "vs torchattacks",
                    "robust acc", "first call s"):
            table.add_column(col, justify="left" if col in ("model", "norm", "eps, step", "attack") else "right")
        for r in pgd:
            base = r.images_per_s[TORCHATTACKS]
            for i, who in enumerate(r.images_per_s):
                setting = (r.model, r.norm, f"{_pixels(r.eps, r.norm)}, {_pixels(r.step_size, r.norm)}",
                           f"{r.batch} x {r.steps}") if i == 0 else ("", "", "", "")
                table.add_row(
                    *setting, who + (" *" if who == r.auto else ""), f"{r.images_per_s[who]:.1f}",
                    f"{r.images_per_s[who] / base:.2f}", f"{r.robust_acc[who]:.1%}", f"{r.first_call_s[who]:.1f}",
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
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                   help="advtui's PGD variants measured beside torchattacks (compiling takes minutes on a CPU)")
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
    console = Console(width=None if sys.stdout.isatty() else 140)
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
                pgd_results.append(bench_pgd(name, model, x, y, norm, steps, args.repeats, device, args.variants))
            r = pgd_results[-1]
            console.log(f"{name} PGD {norm}, images/s: " + ", ".join(f"{k} {v:.1f}" for k, v in r.images_per_s.items()))
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
                "variants": {who: {"score_final": VARIANTS[who][0], "speed": asdict(VARIANTS[who][1])}
                             for who in args.variants},
            },
            "pgd": [asdict(r) for r in pgd_results],
            "train": [asdict(r) for r in train_results],
        }
        args.json.write_text(json.dumps(payload, indent=2))
        console.print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
