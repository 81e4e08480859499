"""Stage commands forked from a process that has already imported torch and the stage code.

Each ``advtui stage`` command spends 3-12 s of CPU importing torch, timm, diffusers, pyautoattack... before its
first tensor op (on a 2-core machine: torch 2.9 s, diffusers 5.5 s more, timm 4 s more); over smoke's ~90
stages that is about a fifth of the pipeline's CPU. ``advtui repro`` therefore runs every plain ``advtui ...``
stage command in a child of one :mod:`multiprocessing` fork server that imported them once
(:mod:`advtui.pipeline.preload`): the same program with the same arguments, working directory, environment
and torch threads, so the same outputs byte for byte (tested), minus the imports. Any other command (shell
syntax, another program) runs in its own process as in ``dvc repro``; ``advtui repro --cold`` runs all of them
that way. A training stage under ``launcher: torchrun`` falls back to cold processes by itself: its forked command
only starts torchrun, whose ranks are fresh interpreters (:mod:`advtui.pipeline.launch`), and waits for them.

CUDA must not be initialised before a fork. diffusers asks at import whether an accelerator is present, so the
fork server asks through NVML (``PYTORCH_NVML_BASED_CUDA_CHECK``), which does not initialise CUDA; a child that
finds CUDA initialised all the same stops with a one-line error naming ``--cold``.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import resource
import shlex
import sys
from multiprocessing.connection import Connection
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.sharedctypes import Synchronized

#: The module the fork server imports before forking anything.
PRELOAD = "advtui.pipeline.preload"
#: Characters that make a command shell syntax rather than a plain argv (run those in a shell, cold).
_SHELL_SYNTAX = set("|&;<>()$`\\\n*?~{}[]#=")


def warm_argv(cmd: str) -> list[str] | None:
    """The argv of ``cmd`` when it is a plain ``advtui ...`` command a warm child can run, else None."""
    if _SHELL_SYNTAX & set(cmd.replace("'", "").replace('"', "")):
        return None
    try:
        argv = shlex.split(cmd)
    except ValueError:
        return None
    return argv if argv and argv[0] == "advtui" else None


class WarmProcess:
    """A forked stage command, with the part of :class:`subprocess.Popen`'s interface a run uses."""

    def __init__(self, process: multiprocessing.process.BaseProcess, cpu: "Synchronized[float]") -> None:
        self._process = process
        self._cpu = cpu
        self.pid = process.pid

    @property
    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the command used, once it has ended; None if it died before saying."""
        return self._cpu.value if self._cpu.value >= 0 else None

    @property
    def returncode(self) -> int | None:
        """The exit code; ``-N`` when signal N ended it, None while it runs (as ``Popen``)."""
        return self._process.exitcode

    def poll(self) -> int | None:
        """The exit code once the command has ended, else None."""
        return self._process.exitcode

    def wait(self) -> int:
        """Wait for the command to end; its exit code."""
        self._process.join()
        assert self._process.exitcode is not None
        return self._process.exitcode


def can_fork_here() -> bool:
    """Whether this process's ``__main__`` lets multiprocessing start children: a child of the fork server
    re-imports the parent's main script by path, which fails for ``python -c`` or a script read from stdin."""
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None):
        return True
    path = getattr(main, "__file__", None)
    return path is None or os.path.isfile(path)


class WarmStarter:
    """Starts ``advtui ...`` commands as children of one fork server (started, and its imports made, on first use)."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload([PRELOAD])
        # Read by torch.cuda.is_available() in the fork server (diffusers calls it at import), inherited from here.
        os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")

    def start(self, argv: list[str], cwd: str, env: dict[str, str], threads: int) -> tuple[WarmProcess, IO[str]]:
        """Run ``argv`` (``advtui ...``) in ``cwd`` with exactly ``env`` and ``threads`` torch threads; the process
        and a text stream of its merged stdout and stderr (read it to the end)."""
        reader, writer = self._context.Pipe(duplex=False)
        cpu = self._context.Value("d", -1.0)
        process = self._context.Process(target=_run_command, args=(argv, cwd, env, threads, writer, cpu),
                                        name=" ".join(argv))
        process.start()
        writer.close()  # the child holds its own copy: the stream ends when the child does
        stream = open(os.dup(reader.fileno()), encoding="utf-8", errors="replace")  # noqa: SIM115 (the caller reads it)
        reader.close()
        return WarmProcess(process, cpu), stream


def _run_command(argv: list[str], cwd: str, env: dict[str, str], threads: int, out: Connection,
                 cpu: "Synchronized[float]") -> None:
    # In the forked child: become the command a fresh process would have been, then run the CLI on argv.
    os.dup2(out.fileno(), 1)
    os.dup2(out.fileno(), 2)
    out.close()
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = list(argv)
    import torch

    torch.set_num_threads(threads)
    if torch.cuda._is_in_bad_fork():
        sys.exit("advtui repro: CUDA was initialised before this stage was forked; run `advtui repro --cold`")
    from advtui.cli.main import app

    try:
        app(args=argv[1:], prog_name="advtui")
    finally:
        # A child of multiprocessing leaves through os._exit: run what an interpreter runs at exit (flushes).
        atexit._run_exitfuncs()
        # a forked child's counts start at zero; its children's: a torchrun stage's ranks
        usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        cpu.value = sum(u.ru_utime + u.ru_stime for u in usage)
