"""``advtui stage`` under ``launcher: torchrun``: the command re-executes itself as ``nproc`` torchrun ranks.

``python -m torch.distributed.run --standalone --nproc_per_node N -m advtui stage RUNNER NAME --params FILE``
(this interpreter's torchrun: no PATH question). Each rank then runs the stage inside the process group
(:func:`advtui.distributed.init`); rank 0 holds the stage lock and writes its outputs. A command
already inside torchrun (``torchrun ... -m advtui stage``, e.g. across nodes from a SLURM script) runs as its rank.

``advtui repro`` forks plain stage commands from a warm process (:mod:`advtui.pipeline.warmstart`); a
distributed stage's forked command only starts torchrun here and waits, so its ranks are fresh processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from advtui.catalog.launch import DISTRIBUTED_RUNNERS
from advtui.catalog.params import Params


def distributed_here(params: Params, runner: str) -> bool:
    """Whether ``advtui stage RUNNER ...`` should re-execute under torchrun (``launcher: torchrun``, a training
    stage); a stage that cannot run distributed says in one line on stderr that it runs in one process."""
    if params.launcher != "torchrun":
        return False
    if runner not in DISTRIBUTED_RUNNERS:
        print(f"stage {runner}: runs in one process (launcher: torchrun runs the stages "
              f"{', '.join(DISTRIBUTED_RUNNERS)})", file=sys.stderr, flush=True)
        return False
    return True


#: The thread counts torch reads at start-up (``advtui repro --threads`` sets them for each stage command).
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def check_devices(device: str, nproc: int) -> str:
    """The device type ``nproc`` ranks run on ("cuda" or "cpu"); ValueError (one line naming the fix) unless they
    can: one CUDA device per rank, an unpinned CUDA device (each rank takes its own), or the CPU."""
    if device == "cpu":  # gloo ranks on any machine; no torch import in this waiting process
        return "cpu"
    from advtui.runtime import pick_device

    resolved = pick_device(device)  # a device this machine lacks fails here, before any rank starts
    if resolved.type == "cuda":
        import torch

        if device.startswith("cuda:") and nproc > 1:
            raise ValueError(f"device: {device} pins every rank to one GPU; set device: cuda or auto with nproc: {nproc}")
        if nproc > torch.cuda.device_count():
            raise ValueError(f"nproc: {nproc} ranks but {torch.cuda.device_count()} CUDA device(s) here; "
                             f"set nproc: {torch.cuda.device_count()} or fewer")
    elif resolved.type != "cpu":
        raise ValueError(f"device: {resolved.type} cannot run under torchrun; set device: cpu, cuda or auto")
    return resolved.type


def rank_env(device_type: str, nproc: int) -> dict[str, str]:
    """The environment of the ranks: this one, with CPU ranks sharing its threads (``nproc`` ranks of all of them
    each would oversubscribe the cores; torch uses every core when no count is set)."""
    env = dict(os.environ)
    if device_type == "cpu":
        threads = int(env.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
        env.update({var: str(max(1, threads // nproc)) for var in THREAD_VARS})
    return env


def torchrun_argv(nproc: int, args: list[str]) -> list[str]:
    """The command that runs ``advtui ARGS`` as ``nproc`` ranks on this machine."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
            "-m", "advtui", *args]


def relaunch(params: Params, runner: str, name: str, params_file: Path) -> int:
    """Run ``advtui stage RUNNER NAME`` as ``params.nproc`` torchrun ranks; their exit code (0: done)."""
    env = rank_env(check_devices(params.device, params.nproc), params.nproc)
    argv = torchrun_argv(params.nproc, ["stage", runner, name, "--params", str(params_file)])
    print(f"stage {runner} {name}: {params.nproc} ranks under torchrun", file=sys.stderr, flush=True)
    return subprocess.run(argv, env=env, check=False).returncode
