"""The one training loop: every paradigm supplies a loss step, the loop does the rest.

``fit`` shuffles and augments the data, runs the step, steps the optimiser and the learning-rate schedule,
logs through DVCLive, shows rich progress bars when run by hand, and checkpoints at every epoch end.
A rerun with the same settings resumes from the last checkpoint and ends with exactly the weights of an
uninterrupted run (all randomness comes from RNG states saved in the checkpoint). A checkpoint is resumed only
when it was made from the same inputs: the content hash (the store's checksum) of the training images and
labels and of the module's starting weights (a probe's frozen encoder included), and the same settings;
any other is discarded with one line (``advtui.files.discard_stale``) and training starts over.

DVCLive layout (one ``Live`` directory, its step = the global optimiser step, counted from 0):

- per step: ``train/loss`` and ``train/<metric>`` for every metric of the step (e.g. ``train/acc``);
- per epoch, at the epoch's last step: ``epoch/index`` (epochs done, from 1), ``epoch/train_loss``,
  ``epoch/train_<metric>`` (means over the epoch's images), ``epoch/lr``, ``epoch/images_per_s`` and
  ``epoch/<key>`` for whatever ``on_epoch`` returns (e.g. ``epoch/test_acc``).

``metrics.json`` (the summary) is rewritten at every epoch end. On resume, rows logged after the
checkpoint (a partly done epoch) are dropped first, so the files never hold a step twice.

Early stopping (``TrainConfig.early_stop``, off by default) holds out part of the training set, logs the
step's loss and metrics on it as ``epoch/val_<key>`` after every epoch, stops once the chosen one has not
improved for ``patience`` epochs, and leaves the module with the best epoch's weights (saved in every
checkpoint, so a resumed run ends with the same ones).

Precision and speed: ``bf16`` autocast is refused where a perturbation passes through the step (a
constructed training set, or adversarial training): bf16 would round its ~2/255 perturbations away (the
precision rule, ``advtui.attacks.speed``). Such runs train in fp32 and say so in one line
(:func:`input_precision`); "auto" is bf16 on CUDA, fp32 elsewhere. The step runs the module through
``advtui.attacks.speed.faster`` with the recipe's ``channels_last`` and ``compile`` (the same speed-ups, "auto"
rule and compile cache as the attacks).

Timings (``images_per_s``) go to these logs and the terminal only: the metrics ``fit`` returns, which
stages store in artifacts and DVC-tracked metrics files, are the same on every rerun.

Under ``torchrun`` (:mod:`advtui.distributed`, world size > 1) every rank draws the same global batch
(the shuffling and augmentation generator is seeded alike on every rank), augments it whole, and trains on its
own contiguous share of it. After the backward pass one all-reduce sums every rank's gradients weighted by its
share (so the update is the global batch's mean gradient, an uneven last batch included), the BatchNorm running
statistics averaged over the ranks, and the step's loss and metrics: the weights equal a one-process run with the
same ``batch_size`` up to float rounding, for steps whose loss is a mean over images and that draw no randomness
of their own. A gradient all-reduce, not DDP: steps that attack their own module (adversarial training) or
leave parameters unused in a step need nothing special, and shares of unequal size need no padding. BatchNorm
normalises each share by its own statistics (as under DDP without SyncBatchNorm): with BatchNorm, and for steps
with their own randomness (PGD starts, SimCLR views, MAE masks, DDPM noise: each rank draws from its own
stream of torch's RNG, all of them checkpointed), a run matches the one-process run in distribution only.
SimCLR's negatives are the images of the rank's share. Only rank 0 logs, shows progress, runs ``on_epoch`` and
the early-stopping validation (its result goes to every rank) and writes the checkpoint; every rank resumes
from it.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from advtui.attacks.speed import faster
from advtui.data.imageset import ImageSet
from advtui.data.store import params_digest, tensors_checksum
from advtui.files import atomic_path, discard_stale
from advtui.paradigms.augment import augment
from advtui import distributed
from advtui.runtime import seed_everything
from advtui.catalog.training import EarlyStopConfig, TrainConfig

log = logging.getLogger(__name__)

_CHECKPOINT_FORMAT = 1
#: Wall-clock figures of an epoch: logged and shown, never returned (a rerun must store the same bytes).
TIMINGS = ("images_per_s",)
_QUIET = ("epoch", "lr", *TIMINGS)  # left off the terminal's epoch bar, which has room for little


@dataclass
class StepOut:
    """What a loss step returns: the scalar ``loss`` to minimise and per-batch mean ``metrics`` to log."""

    loss: Tensor
    metrics: dict[str, Tensor | float] = field(default_factory=dict)


StepFn = Callable[[nn.Module, Tensor, Tensor], StepOut]
"""``step(module, x, y) -> StepOut`` on one augmented batch already on the device; the module is in train
mode. Any randomness it needs (PGD starts, masks, noise) must come from torch's global RNG, which ``fit``
seeds and checkpoints."""


def own_loss_step(module: nn.Module, x: Tensor, y: Tensor) -> StepOut:
    """The step of a module whose forward pass returns its own training loss (MAE, DDPM): labels unused."""
    return StepOut(module(x))


EpochHook = Callable[[nn.Module, int], Mapping[str, float] | None]
"""``on_epoch(module, epoch)`` after each epoch (``epoch`` counted from 1); returned values are logged as
``epoch/<key>`` and included in the final metrics."""


def model_state(model: nn.Module) -> dict[str, Tensor]:
    """The model's state dict as detached, contiguous CPU tensors (what safetensors accepts)."""
    return {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}


def lr_factor(step: int, *, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Learning-rate multiplier at optimiser step ``step`` (0-based): linear warm-up, then cosine or constant."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def input_precision(
    cfg: TrainConfig, data: ImageSet, *, attacks_inputs: bool = False, device: torch.device | str = "cpu"
) -> TrainConfig:
    """``cfg`` as the trainer runs it on ``data`` on ``device``: precision "auto" resolved (bf16 on CUDA, fp32
    elsewhere), then fp32 instead of bf16 where a perturbation passes through the step, i.e. ``data`` is a
    constructed set or the step attacks its inputs (``attacks_inputs``: adversarial training); one line on
    stderr says so. Other configs come back unchanged.

    Callers that record the recipe they ran call it first and record its answer; ``fit`` applies it again
    (a no-op then), so no caller can train a perturbation in bf16.
    """
    if cfg.precision == "auto":
        cfg = replace(cfg, precision="bf16" if torch.device(device).type == "cuda" else "fp32")
    if cfg.precision != "bf16":
        return cfg
    if data.meta.get("source") == "constructed":
        why = f"constructed set {data.meta.get('arch') or data.meta.get('root', '?')}"
    elif attacks_inputs:
        why = "adversarial training"
    else:
        return cfg
    if distributed.is_main():  # one line, not one per torchrun rank
        print(f"precision: fp32, not bf16, for {why}: bf16 would round its ~2/255 perturbations away (DESIGN 4)",
              file=sys.stderr, flush=True)
    return replace(cfg, precision="fp32")


def holdout_split(data: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """``data`` as (training part, validation part): ``fraction`` of the images (rounded, at least one, and
    at least one left to train on) drawn at random with ``seed``, each part in the original order. The
    validation images keep the labels ``data`` carries."""
    n = len(data)
    if n < 2:
        raise ValueError(f"data: {n} image(s) cannot be split for early stopping; set early_stop.patience: 0")
    n_val = min(max(1, round(fraction * n)), n - 1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return data.subset(order[n_val:].sort().values), data.subset(order[:n_val].sort().values)


def _inputs_checksum(module: nn.Module, data: ImageSet) -> str:
    """The content hash of what a run trains from: every training image and label, and the module's starting
    weights and buffers (for a probe, its frozen encoder's). Every byte counts: a set that differs in one
    pixel is another input, and its checkpoint is never resumed."""
    return tensors_checksum({
        "data.images": data.images, "data.labels": data.labels,
        **{f"module.{name}": tensor for name, tensor in module.state_dict().items()},
    })


def _make_optimizer(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    """The RNG states a checkpoint keeps: the generator (the same on every rank) and torch's global RNG; under
    torchrun each rank's own global RNG, by rank (its CUDA one: its own device's alone). A collective."""
    state: dict[str, Any] = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if distributed.world_size() > 1:
        own = {"torch": torch.get_rng_state(),
               "cuda": torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None}
        state["ranks"] = distributed.gather_objects(own)
    elif torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any], generator: torch.Generator) -> None:
    generator.set_state(state["generator"])
    if "ranks" in state:  # a checkpoint of as many ranks (the world size is part of the run's digest)
        own = state["ranks"][distributed.rank()]
        torch.set_rng_state(own["torch"])
        if own["cuda"] is not None:
            torch.cuda.set_rng_state(own["cuda"])
        return
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` beside ``path`` and rename it over ``path``: an interrupt never leaves half a file."""
    tmp = atomic_path(path)
    try:
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several unrelated types for a damaged file
        reason = type(err).__name__
        raise ValueError(f"{path}: checkpoint cannot be read ({reason}); delete it to train from scratch") from err


def _truncate_live_rows(live_dir: Path, next_step: int) -> None:
    """Drop DVCLive rows with step >= ``next_step`` (logged after the checkpoint we resume from)."""
    for tsv in (live_dir / "plots" / "metrics").rglob("*.tsv"):
        lines = tsv.read_text(encoding="utf-8").splitlines()
        if not lines:
            continue
        column = lines[0].split("\t").index("step")
        keep = [lines[0]]
        for row in lines[1:]:
            cells = row.split("\t")
            if len(cells) == len(keep[0].split("\t")) and cells[column].isdigit() and int(cells[column]) < next_step:
                keep.append(row)
        if len(keep) < len(lines):
            tmp = atomic_path(tsv)
            tmp.write_text("".join(line + os.linesep for line in keep), encoding="utf-8")
            os.replace(tmp, tsv)


class _Progress:
    """Rich progress bars (epochs, steps) on a terminal, one line per epoch elsewhere, or nothing."""

    def __init__(self, enabled: bool, epochs: int, steps_per_epoch: int, start_epoch: int) -> None:
        self._bars = None
        self._lines = enabled and not sys.stdout.isatty()
        self._epochs = epochs
        if enabled and sys.stdout.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
            from rich.table import Column

            self._bars = Progress(
                TextColumn("{task.description}", table_column=Column(no_wrap=True, min_width=9)),
                BarColumn(bar_width=30), MofNCompleteColumn(), TimeRemainingColumn(),
                TextColumn("{task.fields[status]}", table_column=Column(no_wrap=True, overflow="ellipsis")),
            )
            self._epoch_task = self._bars.add_task("epochs", total=epochs, completed=start_epoch, status="")
            self._step_task = self._bars.add_task("steps", total=steps_per_epoch, status="")

    @contextmanager
    def running(self) -> Iterator[_Progress]:
        if self._bars is None:
            yield self
            return
        with self._bars:
            yield self

    def epoch_start(self, epoch: int) -> None:
        if self._bars is not None:
            self._bars.reset(self._step_task, description=f"epoch {epoch}", status="")

    def step(self, loss: float) -> None:
        if self._bars is not None:
            self._bars.update(self._step_task, advance=1, status=f"loss {loss:.4f}")

    def epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        if self._bars is not None:
            text = " ".join(f"{k.removeprefix('train_')} {v:.3g}" for k, v in metrics.items() if k not in _QUIET)
            self._bars.update(self._epoch_task, advance=1, status=text)
        elif self._lines:
            text = " ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k != "epoch")
            print(f"epoch {epoch}/{self._epochs} {text}", flush=True)


@dataclass
class _EarlyStop:
    """The best epoch so far on the validation part (``cfg.metric``) and the epochs waited since it."""

    cfg: EarlyStopConfig
    best: float | None = None
    best_epoch: int = 0
    best_metrics: dict[str, float] = field(default_factory=dict)
    best_weights: dict[str, Tensor] = field(default_factory=dict)
    waited: int = 0

    @property
    def key(self) -> str:
        """The epoch metric that decides: ``val_acc`` or ``val_loss``."""
        return f"val_{self.cfg.metric}"

    @property
    def stopped(self) -> bool:
        """Whether ``patience`` epochs in a row have passed without improvement."""
        return self.waited >= self.cfg.patience

    def update(self, epoch: int, metrics: Mapping[str, float], module: nn.Module) -> None:
        """Take ``epoch`` as the best one if its value beats the best so far (a tie keeps the earlier epoch)."""
        if self.key not in metrics:
            raise ValueError(f"early_stop.metric: the training step reports no {self.cfg.metric!r}; use metric: loss")
        value = metrics[self.key]
        improved = self.best is None or (value > self.best if self.cfg.metric == "acc" else value < self.best)
        if not improved:
            self.waited += 1
            return
        self.best, self.best_epoch, self.best_metrics, self.waited = value, epoch, dict(metrics), 0
        # clones: on a CPU run the state dict's tensors are the live parameters themselves
        self.best_weights = {k: t.detach().to("cpu", copy=True) for k, t in module.state_dict().items()}

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of it."""
        return {"best": self.best, "best_epoch": self.best_epoch, "best_metrics": self.best_metrics,
                "best_weights": self.best_weights, "waited": self.waited}

    def load(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state`'s answer."""
        self.best, self.best_epoch, self.waited = state["best"], int(state["best_epoch"]), int(state["waited"])
        self.best_metrics, self.best_weights = dict(state["best_metrics"]), dict(state["best_weights"])

    def finish(self, module: nn.Module, epochs_trained: int, n_val: int) -> dict[str, float]:
        """Load the best epoch's weights into ``module``; its metrics, with ``best_epoch``, ``epochs_trained``
        (where training stopped) and ``n_val`` (validation images)."""
        module.load_state_dict(self.best_weights)
        return {**self.best_metrics, "best_epoch": float(self.best_epoch), "epochs_trained": float(epochs_trained),
                "n_val": float(n_val)}


@dataclass
class _Run:
    """Everything fixed for one training run, and the state a checkpoint saves and restores.

    ``digest`` identifies the run (settings, seed, the content hash of its data and starting weights,
    architecture, ``identity``): a checkpoint with another digest was made by another run and is never resumed.
    With early stopping, ``data`` is the training part, ``val`` the held-out part and ``early`` its record.
    ``fast`` is what the step runs: ``module``, and while ``fit``'s loop runs, ``module`` through its speed-ups.
    """

    module: nn.Module
    data: ImageSet
    cfg: TrainConfig
    step: StepFn
    device: torch.device
    steps_per_epoch: int
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    generator: torch.Generator
    digest: str
    fast: nn.Module
    val: ImageSet | None = None
    early: _EarlyStop | None = None
    trainable: list[nn.Parameter] = field(default_factory=list)
    step_keys: tuple[str, ...] = ()  # what the step reports ("loss" first): a rank with no images still sums them

    @classmethod
    def start(
        cls, module: nn.Module, data: ImageSet, cfg: TrainConfig, step: StepFn, *,
        device: torch.device, seed: int, identity: Mapping[str, Any] | None,
    ) -> _Run:
        """Move ``module`` to ``device``, build its optimiser and schedule, and seed every RNG with ``seed``."""
        module.to(device)
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            raise ValueError("module: has no parameters with requires_grad; unfreeze what should be trained")
        if len(data) == 0:
            raise ValueError("data: is empty; train on at least one image")
        world = distributed.world_size()
        if world > 1 and cfg.batch_size < world:
            raise ValueError(f"batch_size: {cfg.batch_size} is less than the {world} ranks, which need an image each "
                             "per batch; raise batch_size or lower nproc")
        run_id: dict[str, Any] = {
            "train": asdict(cfg), "seed": seed, "inputs": _inputs_checksum(module, data),
            "identity": dict(identity or {}), "arch": getattr(module, "arch", type(module).__name__),
        }
        if world > 1:  # its checkpoint holds one RNG state per rank; one-process digests stay as they were
            run_id["world_size"] = world
        digest = params_digest(run_id)
        val, early = None, None
        if cfg.early_stop.enabled:
            data, val = holdout_split(data, cfg.early_stop.val_fraction, seed)
            early = _EarlyStop(cfg.early_stop)
        if len(data) < world:
            raise ValueError(f"data: {len(data)} training image(s) for {world} ranks; lower nproc")
        steps_per_epoch = math.ceil(len(data) / cfg.batch_size)
        optimizer = _make_optimizer(params, cfg)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda s: lr_factor(
                s, total_steps=cfg.epochs * steps_per_epoch, warmup_steps=cfg.warmup_epochs * steps_per_epoch,
                schedule=cfg.schedule,
            ),
        )
        generator = seed_everything(seed)
        if world > 1:
            # the step's own randomness (PGD starts, masks, noise): each rank its own stream, rank 0 the one-process one
            torch.manual_seed(seed + (distributed.rank() << 32))
            for tensor in (*module.parameters(), *module.buffers()):  # every rank starts from rank 0's weights
                distributed.broadcast(tensor.data)
        return cls(
            module=module, data=data, cfg=cfg, step=step, device=device, steps_per_epoch=steps_per_epoch, optimizer=optimizer, schedule=schedule, generator=generator,
            digest=digest, fast=module, val=val, early=early, trainable=params,
        )

    def resume(self, checkpoint: Path) -> tuple[int, dict[str, float]]:
        """Restore the state saved in ``checkpoint`` if this run made it; returns (epochs done, their last metrics).

        A checkpoint of another run (other inputs or settings) is deleted with one line, and training starts over.
        """
        state = _load_checkpoint(checkpoint) if checkpoint.exists() else None
        distributed.barrier()  # every rank has read it before rank 0 may delete a stale one
        if state is None:
            return 0, {}
        if state.get("format") != _CHECKPOINT_FORMAT or state.get("digest") != self.digest:
            if distributed.is_main():
                discard_stale(checkpoint)
            return 0, {}
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        _set_rng_state(state["rng"], self.generator)
        if self.early is not None:
            self.early.load(state["early_stop"])
        log.info("resuming %s after epoch %d of %d", checkpoint, state["epoch"], self.cfg.epochs)
        return int(state["epoch"]), dict(state["metrics"])

    def save(self, checkpoint: Path, epoch: int, metrics: Mapping[str, float]) -> None:
        """Checkpoint the run after ``epoch``: weights, optimiser, schedule and RNG states, and the epoch's metrics.
        Under torchrun every rank calls it (it gathers their RNG states), rank 0 writes, the others wait for it."""
        rng = _rng_state(self.generator)
        if distributed.is_main():
            _save_checkpoint(
                checkpoint,
                {
                    "format": _CHECKPOINT_FORMAT, "digest": self.digest, "epoch": epoch, "metrics": dict(metrics),
                    "model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "schedule": self.schedule.state_dict(), "rng": rng,
                    "early_stop": None if self.early is None else self.early.state(),
                },
            )
        distributed.barrier()


class _LiveLog:
    """The run's DVCLive logs (see the module docstring for the keys), or nothing when ``live_dir`` is None or
    dvclive cannot be imported (one line says so: the logs are for watching a run; its results are the same).

    Opened on a run resumed after ``done_epochs``, it first drops the rows logged after that checkpoint.
    """

    def __init__(self, live_dir: str | os.PathLike | None, steps_per_epoch: int, done_epochs: int) -> None:
        self._live = None
        self._steps_per_epoch = steps_per_epoch
        if live_dir is None:
            return
        try:
            from dvclive import Live
        except ImportError as err:  # DVCLive imports DVC, which a GPU machine may lack (bench/gpu_fast.py)
            print(f"dvclive unavailable ({err}): no DVCLive logs in {live_dir}; the run is otherwise the same",
                  file=sys.stderr, flush=True)
            return

        if done_epochs > 0:
            _truncate_live_rows(Path(live_dir), done_epochs * steps_per_epoch)
        # the pipeline's dvc.yaml declares plots and metrics, and `dvc exp run` saves experiments
        self._live = Live(dir=str(live_dir), resume=done_epochs > 0, save_dvc_exp=False, dvcyaml=None)

    def step(self, global_step: int, values: Mapping[str, float]) -> None:
        """Log one optimiser step's ``values`` as ``train/<key>``."""
        if self._live is None:
            return
        self._live.step = global_step
        for key, value in values.items():
            self._live.log_metric(f"train/{key}", value)

    def epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Log the ``metrics`` of ``epoch`` (from 1) as ``epoch/<key>`` at its last step; rewrite the summary."""
        if self._live is None:
            return
        self._live.step = epoch * self._steps_per_epoch - 1
        self._live.log_metric("epoch/index", epoch)
        for key, value in metrics.items():
            if key != "epoch":
                self._live.log_metric(f"epoch/{key}", value)
        self._live.make_summary()

    def end(self) -> None:
        """Close the logs of a finished run (an interrupted one is left as its last epoch wrote it)."""
        if self._live is not None:
            self._live.end()


def _autocast(run: _Run) -> torch.autocast:
    return torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.cfg.precision == "bf16")


def _validate(run: _Run, val: ImageSet) -> dict[str, float]:
    """The step's loss and metrics on the held-out images, as ``val_<key>`` means over them: eval mode,
    no parameter update (an attack inside the step still takes its input gradients)."""
    run.module.eval()
    sums: dict[str, float] = {}
    with torch.no_grad(), _autocast(run):
        for x, y in val.loader(run.cfg.batch_size):
            out = run.step(run.fast, x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True))
            for key, value in {"loss": out.loss, **out.metrics}.items():
                sums[key] = sums.get(key, 0.0) + float(value) * len(y)
    run.module.train()
    return {f"val_{k}": v / len(val) for k, v in sums.items()}


def _running_stats(module: nn.Module) -> list[Tensor]:
    """The BatchNorm running means and variances of ``module``: what the ranks average after each step."""
    return [t for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
            for t in (m.running_mean, m.running_var)]


def _all_reduce_step(run: _Run, out: StepOut | None, share: int, batch: int) -> dict[str, float]:
    """Under torchrun, after this rank's backward pass on ``share`` of the global ``batch`` images (``out``: its
    step, None for no images): leave on every rank the global batch's mean gradient (each rank's weighted by its
    share; a parameter no rank gave a gradient keeps none), the BatchNorm running statistics averaged over the
    ranks that had images, and return the global batch's loss and metrics. One all-reduce."""
    if out is not None:
        run.step_keys = ("loss", *out.metrics)
    weight, had = share / batch, float(share > 0)
    grads = [p.grad for p in run.trainable]
    stats = _running_stats(run.module)
    values = [out.loss.detach(), *out.metrics.values()] if out is not None else [0.0] * len(run.step_keys)
    flat = torch.cat([
        *((g.detach().float().flatten() * weight) if g is not None else p.new_zeros(p.numel(), dtype=torch.float32)
          for p, g in zip(run.trainable, grads)),
        torch.tensor([float(g is not None) for g in grads], device=run.device),
        *(t.detach().float().flatten() * had for t in stats),
        torch.tensor([float(v) * share for v in values] + [had], device=run.device),
    ])
    distributed.all_reduce_sum(flat)
    chunks = iter(flat.split([*(p.numel() for p in run.trainable), len(grads), *(t.numel() for t in stats),
                              len(values) + 1]))
    for p in run.trainable:
        p.grad = next(chunks).view_as(p).to(p.dtype)
    for p, present in zip(run.trainable, next(chunks).tolist()):
        if not present:
            p.grad = None
    stat_chunks = [next(chunks) for _ in stats]
    *sums, ranks_with_images = next(chunks).tolist()
    for t, chunk in zip(stats, stat_chunks):
        t.copy_((chunk / ranks_with_images).view_as(t))
    return {key: total / batch for key, total in zip(run.step_keys, sums)}


def _train_epoch(run: _Run, epoch: int, live: _LiveLog, bars: _Progress) -> dict[str, float]:
    """One shuffled, augmented pass over the data (the last partial batch included), the step running the
    module through its speed-ups (``run.fast``); returns the epoch's ``epoch``, ``train_<metric>`` means over
    its images, last ``lr`` and ``images_per_s``. Under torchrun each rank steps on its share of every batch
    (the module docstring says how the ranks' work adds up to the one-process step)."""
    run.module.train()
    bars.epoch_start(epoch)
    autocast = _autocast(run)
    global_step = (epoch - 1) * run.steps_per_epoch
    sums: dict[str, float] = {}
    seen, started = 0, time.perf_counter()
    lr = run.optimizer.param_groups[0]["lr"]
    world = distributed.world_size()
    for x, y in run.data.loader(run.cfg.batch_size, shuffle=True, generator=run.generator):
        x = x.to(run.device, non_blocking=True)
        y = y.to(run.device, non_blocking=True)
        # the whole batch is augmented on every rank: the generator draws as in a one-process run
        x = augment(x, run.cfg.augment, run.generator)
        batch = len(y)
        if world > 1:
            x, y = x.tensor_split(world)[distributed.rank()], y.tensor_split(world)[distributed.rank()]
        with autocast:
            out = run.step(run.fast, x, y) if len(y) else None
        run.optimizer.zero_grad(set_to_none=True)
        if out is not None:
            out.loss.backward()
        reduced = _all_reduce_step(run, out, len(y), batch) if world > 1 else None
        run.optimizer.step()
        # the rate this step used, before the schedule moves on: what the epoch logs as its lr
        lr = run.optimizer.param_groups[0]["lr"]
        run.schedule.step()
        if reduced is not None:
            values = reduced
        else:
            assert out is not None
            values = {"loss": float(out.loss.detach()), **{k: float(v) for k, v in out.metrics.items()}}
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value * batch
        seen += batch
        live.step(global_step, values)
        bars.step(values["loss"])
        global_step += 1
    return {
        "epoch": float(epoch),
        **{f"train_{k}": v / seen for k, v in sums.items()},
        "lr": lr,
        "images_per_s": seen / (time.perf_counter() - started),
    }


def fit(
    module: nn.Module,
    data: ImageSet,
    cfg: TrainConfig,
    step: StepFn,
    *,
    checkpoint: str | os.PathLike,
    live_dir: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    identity: Mapping[str, Any] | None = None,
    on_epoch: EpochHook | None = None,
    progress: bool = True,
    attacks_inputs: bool = False,
) -> dict[str, float]:
    """Train ``module`` on ``data`` with the loss ``step`` for ``cfg.epochs`` epochs (fewer when it stops
    early), resumably.

    Args:
        module: the model to train in place (its trainable parameters are those with requires_grad).
        data: training images; shuffled every epoch, the last partial batch included.
        cfg: optimisation settings.
        step: the paradigm's loss on one batch (see ``StepFn``).
        checkpoint: file written atomically at every epoch end. If it exists when ``fit`` starts and was
            made by the same run (same cfg, seed, ``identity``, and the same content of ``data`` and of
            ``module``'s starting weights), training resumes after its epoch; a finished run just loads its
            weights. Otherwise it is deleted (one line on stderr says so) and training starts over. The
            caller removes it once the run's last output is written.
        live_dir: DVCLive directory (None: no logging); a fresh start clears its old metrics.
        device: where to train.
        seed: seeds the shuffling and augmentation generator and torch's global RNG.
        identity: anything else that defines the run (the paradigm's settings), for the checkpoint match.
        on_epoch: evaluation hook after each epoch (see ``EpochHook``); it only logs, never decides when
            to stop (early stopping reads the held-out part of ``data`` alone). Under torchrun it runs on rank 0
            alone, whose returned metrics alone hold its values.
        progress: rich bars on a terminal, one line per epoch otherwise.
        attacks_inputs: the step perturbs its inputs (adversarial training): bf16 is refused, as for a
            constructed ``data`` (see :func:`input_precision`).

    Returns:
        The last epoch's metrics: ``epoch``, ``train_loss``, ``train_<metric>``, ``lr`` and the hook's
        values; no timings (``images_per_s`` is in the DVCLive logs). With early stopping, the best
        epoch's (its ``val_<key>`` included; the module holds its weights) plus ``best_epoch``,
        ``epochs_trained`` and ``n_val``.
    """
    checkpoint = Path(checkpoint)
    cfg = input_precision(cfg, data, attacks_inputs=attacks_inputs, device=device)
    run = _Run.start(module, data, cfg, step, device=torch.device(device), seed=seed, identity=identity)
    done, metrics = run.resume(checkpoint)
    main = distributed.is_main()  # under torchrun, rank 0 alone logs, shows progress and evaluates
    live = _LiveLog(live_dir if main else None, run.steps_per_epoch, done_epochs=done)
    bars = _Progress(progress and main, cfg.epochs, run.steps_per_epoch, done)
    with bars.running(), faster(module, cfg.speed, run.device) as run.fast:
        for epoch in range(done + 1, cfg.epochs + 1):
            if run.early is not None and run.early.stopped:
                break
            metrics = _train_epoch(run, epoch, live, bars)
            if run.val is not None:  # every rank stops at the same epoch: rank 0's validation decides
                metrics.update(distributed.broadcast_object(_validate(run, run.val) if main else None))
            if on_epoch is not None and main:
                metrics.update({k: float(v) for k, v in (on_epoch(module, epoch) or {}).items()})
            if run.early is not None:
                run.early.update(epoch, metrics, module)
            live.epoch(epoch, metrics)
            run.save(checkpoint, epoch, metrics)
            bars.epoch_end(epoch, metrics)
            done = epoch
    live.end()
    if run.early is not None and run.val is not None:
        metrics = run.early.finish(module, done, len(run.val))
    return {k: v for k, v in metrics.items() if k not in TIMINGS}
