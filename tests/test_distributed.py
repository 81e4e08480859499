"""Training under torchrun: two CPU ranks (gloo) train as one process with the same global batch, only rank 0
writes, and a run killed with SIGKILL resumes to the weights of an uninterrupted one.

The ranks are forked from the test process with the environment torchrun gives them (torch imported once, so each
run costs its training alone); the launcher's tests run the real ``python -m torch.distributed.run``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import dvclive  # noqa: F401  (imported once here, not by every forked rank 0)
import pytest
import torch
import torch.multiprocessing as mp
import yaml

from advtui.catalog import paths
from advtui.catalog.launch import LAUNCH_PARAMS, TRAINING_RUNNERS
from advtui.catalog.params import parse_params, profile_path
from advtui.catalog.stages import FAMILIES
from advtui.catalog.training import AugmentConfig, TrainConfig
from advtui.data.imageset import ImageSet
from advtui.paradigms.supervised import supervised_step
from advtui.paradigms.trainer import StepFn, StepOut, fit
from advtui import distributed
from advtui.pipeline.launch import check_devices, distributed_here, rank_env, torchrun_argv
from advtui.schema import ParamsError

#: 47 images in batches of 10: the last batch (7) splits unevenly over two ranks (4 + 3).
CFG = TrainConfig(epochs=3, batch_size=10, lr=0.05, optimizer="sgd", momentum=0.9,
                  augment=AugmentConfig(flip=True, crop_padding=1, noise_std=0.02))
STEPS_PER_EPOCH = 5


def _data() -> ImageSet:
    generator = torch.Generator().manual_seed(5)
    return ImageSet(images=torch.rand(47, 3, 8, 8, generator=generator),
                    labels=torch.randint(0, 4, (47,), generator=generator), classes=list("abcd"))


def _model() -> torch.nn.Module:
    torch.manual_seed(3)
    # no BatchNorm, whose statistics are per rank: the exact equivalence holds
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))


def _clean(run: Path, live: bool = False) -> torch.nn.Module:
    """The supervised run (no randomness but the trainer's): its weights match across world sizes."""
    model = _model()
    fit(model, _data(), CFG, supervised_step(), checkpoint=run / "clean.ckpt",
        live_dir=run / "live" if live else None, seed=1, progress=True)
    return model


def _noisy_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepOut:
    # randomness of the step's own (torch's global RNG, each rank's), which a resume must restore
    return supervised_step()(model, x + 0.05 * torch.randn_like(x), y)


def _noisy(run: Path, kill_at: int = 0) -> torch.nn.Module:
    """The run with a step of its own randomness; rank 0 sends itself SIGKILL at its ``kill_at``-th step (> 0)."""
    step: StepFn = _noisy_step
    if kill_at:
        calls = [0]

        def step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepOut:
            calls[0] += 1
            if calls[0] == kill_at and distributed.is_main():
                os.kill(os.getpid(), signal.SIGKILL)
            return _noisy_step(model, x, y)

    model = _model()
    fit(model, _data(), CFG, step, checkpoint=run / "noisy.ckpt", seed=2, progress=False)
    return model


def _record_writes(under: Path) -> list[str]:
    """Every file or folder this process creates, writes, renames or removes under ``under`` from now on."""
    writes: list[str] = []

    def hook(event: str, args: tuple) -> None:
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            path, mode, flags = args
            writing = set(mode) & set("wax+") if mode else flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        elif event in ("os.rename", "os.replace", "os.remove", "os.mkdir"):
            path, writing = args[1] if event in ("os.rename", "os.replace") else args[0], True
        else:
            return
        if writing and Path(os.fsdecode(path)).resolve().is_relative_to(under):
            writes.append(f"{event} {os.fsdecode(path)}")

    sys.addaudithook(hook)
    return writes


def _rank(index: int, port: int, out: Path, run: str, kill_at: int) -> None:
    # a forked rank, with the environment torchrun would have given it
    os.environ.update(RANK=str(index), LOCAL_RANK=str(index), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    writes = _record_writes((out / "run").resolve())
    with distributed.init("cpu"):
        model = _clean(out / "run", live=True) if run == "clean" else _noisy(out / "run", kill_at)
    torch.save({"weights": model.state_dict(), "writes": writes}, out / f"rank{index}.pt")


def _two_ranks(out: Path, run: str, kill_at: int = 0) -> list[dict]:
    """Train ``run`` ("clean" or "noisy") on two ranks under ``out/run``; what each rank saved."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.start_processes(_rank, args=(port, out, run, kill_at), nprocs=2, start_method="fork")
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


@pytest.fixture(autouse=True)
def _outside_any_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # DVCLive runs `dvc init` in the enclosing git repo when it finds no DVC repo; keep tests out of ours.
    monkeypatch.chdir(tmp_path)


def test_two_ranks_train_as_one_process_with_the_same_global_batch_and_only_rank_0_writes(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    one = _clean(tmp_path / "one")  # one process, the same global batch of 10 (first: the forked ranks start warm)
    capfd.readouterr()
    ranks = _two_ranks(tmp_path, "clean")
    shown = capfd.readouterr().out
    for name, expected in one.state_dict().items():
        assert torch.allclose(ranks[0]["weights"][name], expected, rtol=1e-5, atol=1e-6), name
        assert torch.equal(ranks[0]["weights"][name], ranks[1]["weights"][name]), name

    assert ranks[1]["writes"] == []
    written = " ".join(ranks[0]["writes"])
    for made in ("clean.ckpt", "live/metrics.json", "live/plots/metrics/train/loss.tsv"):
        assert str(tmp_path / "run" / made) in written, made
    assert shown.count("epoch 1/3") == 1  # rank 0's progress alone


def test_a_run_killed_with_sigkill_resumes_from_its_checkpoint_to_the_uninterrupted_weights(tmp_path: Path) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir(), killed.mkdir()
    expected = _two_ranks(straight, "noisy")
    # the step's own noise is each rank's: both ranks hold the same weights all the same
    for name, tensor in expected[0]["weights"].items():
        assert torch.equal(tensor, expected[1]["weights"][name]), name

    with pytest.raises(mp.ProcessExitedException, match="SIGKILL"):  # rank 0, in epoch 2: after epoch 1's checkpoint
        _two_ranks(killed, "noisy", kill_at=STEPS_PER_EPOCH + 3)
    assert torch.load(killed / "run" / "noisy.ckpt", weights_only=True)["epoch"] == 1
    assert not (killed / "rank0.pt").exists()

    got = _two_ranks(killed, "noisy")
    for rank in (0, 1):
        for name, tensor in expected[rank]["weights"].items():
            assert torch.equal(got[rank]["weights"][name], tensor), (rank, name)


def test_outside_torchrun_there_is_one_rank_and_no_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert not distributed.under_torchrun() and not distributed.active()
    distributed.barrier()  # a no-op
    with distributed.init("cpu") as device:
        assert device == torch.device("cpu") and not distributed.active()
    assert distributed.broadcast_object({"a": 1}) == {"a": 1} and distributed.gather_objects(3) == [3]


def test_bad_distributed_settings_fail_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(RuntimeError, match="no process group"):
        distributed.barrier()
    with pytest.raises(ValueError, match="pins every rank to one GPU"):
        with distributed.init("cuda:0"):
            pass
    with pytest.raises(ValueError, match="batch_size: 1 is less than the 2 ranks"):
        fit(torch.nn.Linear(2, 2), _data(), TrainConfig(batch_size=1), supervised_step(),
            checkpoint=tmp_path / "x.ckpt", progress=False)


# --- the launcher: params.yaml's launcher and nproc ------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
HANG_GUARD = 600  # seconds: only a hung run ever waits this long


def _smoke() -> dict:
    return yaml.safe_load(profile_path("smoke").read_text())


@pytest.mark.parametrize(("launcher", "nproc", "message"), [
    ("torchrun", 0, "nproc: must be >= 1, got 0"),
    ("mpirun", 1, "launcher: unknown launcher 'mpirun'; use one of local, torchrun"),
    ("local", 2, "nproc: 2 processes need launcher: torchrun"),
])
def test_bad_launch_params_fail_with_one_line(launcher: str, nproc: int, message: str) -> None:
    with pytest.raises(ParamsError, match=re.escape(message)):
        parse_params({**_smoke(), "launcher": launcher, "nproc": nproc})


def test_only_training_stages_relaunch_under_torchrun(capsys: pytest.CaptureFixture[str]) -> None:
    local = parse_params(_smoke())
    assert (local.launcher, local.nproc) == ("local", 1)  # every profile's default: today's one-process stages
    assert not distributed_here(local, "source")
    torchrun = parse_params({**_smoke(), "launcher": "torchrun", "nproc": 2})
    assert all(distributed_here(torchrun, runner) for runner in ("source", "retrain", "pretrain", "construct", "attack"))
    assert capsys.readouterr().err == ""
    assert not distributed_here(torchrun, "probe")
    assert capsys.readouterr().err.strip() == (
        "stage probe: runs in one process (launcher: torchrun runs the stages source, retrain, pretrain, construct, "
        "attack)")
    # dvc.yaml: exactly the stages whose results depend on the ranks read the keys (sharded ones make the same bytes)
    for fam in FAMILIES:
        assert set(LAUNCH_PARAMS) <= set(fam.params) if fam.runner in TRAINING_RUNNERS else \
            not set(LAUNCH_PARAMS) & set(fam.params), fam.name
    assert torchrun_argv(2, ["stage", "source", "standard"])[1:] == [
        "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "advtui", "stage", "source",
        "standard"]


def test_devices_the_ranks_cannot_share_fail_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_devices("cpu", 2) == "cpu"
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert rank_env("cpu", 2)["OMP_NUM_THREADS"] == rank_env("cpu", 2)["MKL_NUM_THREADS"] == "2"  # cores shared
    assert rank_env("cpu", 8)["OMP_NUM_THREADS"] == "1" and rank_env("cuda", 2)["OMP_NUM_THREADS"] == "4"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available; set device: cpu or auto"):
            check_devices("cuda", 2)
    with pytest.raises(ValueError, match="pins every rank to one GPU") if torch.cuda.is_available() else \
            pytest.raises(RuntimeError, match="CUDA is not available"):
        check_devices("cuda:0", 2)


def test_a_training_stage_with_launcher_torchrun_runs_as_two_ranks(tmp_path: Path) -> None:
    raw = _smoke()
    raw.update(device="cpu", launcher="torchrun", nproc=2)
    raw["data"].update(train_size=80, test_size=20)
    raw["sources"]["train"].update(epochs=1, batch_size=40)
    for threat in ("l2", "linf"):
        raw["attack"][threat]["steps"] = 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "advtui", "stage", "source", "standard"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=HANG_GUARD)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "stage source standard: 2 ranks under torchrun" in done.stderr
    assert done.stdout.count("source standard done") == 1  # rank 0's line alone
    row = json.loads((tmp_path / paths.metrics_path("E1", "standard")).read_text())
    assert row["model"] == "standard" and 0 <= row["clean_acc"] <= 1
    assert (tmp_path / paths.model_path("standard")).exists()
    assert not list((tmp_path / "data" / "progress").glob("*.resume"))  # rank 0 removed what was kept to resume


def test_a_stage_that_cannot_run_distributed_refuses_torchrun_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    from advtui.cli.stage import _run_as_rank

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ValueError, match="stage probe: cannot run under torchrun; run it as a plain command"):
        _run_as_rank("probe", "SL-natural", parse_params(_smoke()))
