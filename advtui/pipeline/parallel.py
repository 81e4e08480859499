"""Run the pipeline's stages several at a time, recorded in ``dvc.lock`` exactly as ``dvc repro`` records them.

``dvc repro`` runs one stage after another; on a CPU box each stage then holds both cores only while torch's
large kernels run, and idles them through Python start-up, data loading and small ops. Here DVC still decides
everything it decides in ``dvc repro`` (which stages a target needs, whether a stage changed, the run cache,
what ``dvc.lock`` records), in this one process, through the same ``Stage`` methods ``dvc repro`` calls. Only
the stage commands run concurrently, each with ``threads`` torch threads, as soon as every stage it depends on
has finished; a plain ``advtui ...`` command is forked from a process that has already imported torch and the
stage code (:mod:`advtui.pipeline.warmstart`), any other runs in its own process as in ``dvc repro``. Nothing
else writes ``dvc.lock``: the commits happen here, one at a time, under DVC's repository lock.

The announcements follow DVC's (``Running stage 'x':``, ``Stage 'x' didn't change, skipping``), plus a
``Finished stage 'x'`` line, so the app's run wrapper and ``bench/pipeline_times.py`` can follow the run;
each line of a stage's output is prefixed with its stage name.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from advtui.pipeline.launch import THREAD_VARS as _THREAD_VARS
from advtui.pipeline.warmstart import WarmStarter, can_fork_here, warm_argv

if TYPE_CHECKING:
    from dvc.repo import Repo
    from dvc.stage import Stage

#: The line announcing that a stage's command finished and was committed (``dvc repro`` has none).
FINISHED_STAGE = re.compile(r"^Finished stage '([^']+)' in ([0-9.]+) s(?:, CPU ([0-9.]+) s)?")
#: The line announcing that a stage's command failed (its dependants do not start).
FAILED_STAGE = re.compile(r"^ERROR: stage '([^']+)' failed")
#: The first line of a run with several stages at once (tells the app that stages overlap).
PARALLEL_RUN = re.compile(r"^Running (\d+) stages?, up to (\d+) at a time")
_TAIL_LINES = 20
#: A stage whose command ran at least this long has its ``dvc.lock`` entry written as soon as it is committed;
#: shorter ones are written together, at most this long after the last write (see ``ParallelRepro._commit``).
LOCK_BATCH_S = 60.0


@contextmanager
def repo_lock(repo: "Repo", say: Callable[[str], None], patience_s: float = 10.0) -> Iterator[None]:
    """Hold DVC's repository lock, waiting for it as long as another DVC command (the app's ``dvc status``, a
    ``dvc exp show``) holds it: DVC itself gives up after 3 s, which would end a run of hours at a commit."""
    from dvc.lock import LockError

    waited = time.monotonic()
    told = False
    while True:
        try:
            repo.lock.lock()
            break
        except LockError:
            if not told and time.monotonic() - waited > patience_s:
                say("Waiting for another DVC command to release the repository lock (.dvc/tmp/lock)")
                told = True
            time.sleep(0.5)
    try:
        yield
    finally:
        repo.lock.unlock()


def default_threads(jobs: int) -> int:
    """Torch threads per stage: the machine's cores shared among ``jobs`` stages (at least one)."""
    return max(1, (os.cpu_count() or 1) // jobs)


class _Process(Protocol):
    """What a run needs of a stage command's process: a ``subprocess.Popen`` or a ``WarmProcess``."""

    returncode: int | None

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


@dataclass
class _Running:
    stage: "Stage"
    proc: _Process
    started: float
    tail: deque = field(default_factory=lambda: deque(maxlen=_TAIL_LINES))
    reader: threading.Thread | None = None


def plan(repo: "Repo", targets: Iterable[str] = ()) -> list["Stage"]:
    """The stages ``dvc repro TARGETS`` would consider (every stage when no target), dependencies first."""
    import networkx as nx

    graph = repo.index.graph  # edges point from a stage to the stages it depends on
    wanted = list(graph.nodes)
    if targets:
        chosen: set = set()
        for target in targets:
            for stage in repo.stage.collect(target):
                chosen |= {stage} | nx.descendants(graph, stage)
        wanted = [s for s in wanted if s in chosen]
    # Ties go in dvc.yaml's order, as in `dvc repro`, so a run's order is the same every time.
    position = {stage: i for i, stage in enumerate(repo.index.stages)}
    return list(nx.lexicographical_topological_sort(graph.subgraph(wanted).reverse(), key=position.__getitem__))


def _upstream(repo: "Repo", stages: list["Stage"]) -> dict["Stage", set["Stage"]]:
    graph = repo.index.graph
    members = set(stages)
    return {s: {d for d in graph.successors(s) if d in members} for s in stages}


def start_order(stages: list["Stage"], needs: dict["Stage", set["Stage"]]) -> list["Stage"]:
    """``stages`` (dependencies first) reordered so that, among stages ready at the same time, the one heading the
    longest chain of dependants starts first (ties keep their order). Started last, a long chain (smoke's
    source_cl -> construct -> pretrain -> probe -> attack) runs alone at the end while the other slot idles."""
    height: dict = {}
    for stage in reversed(stages):  # dependants come later in ``stages``, so theirs are known
        height[stage] = 1 + max((height[d] for d in stages if stage in needs[d]), default=0)
    position = {stage: i for i, stage in enumerate(stages)}
    return sorted(stages, key=lambda s: (-height[s], position[s]))


class ParallelRepro:
    """One run: stages of ``repo`` started up to ``jobs`` at a time, committed one by one as they finish.

    ``echo`` receives every line meant for the user (the announcements and the stages' prefixed output).
    """

    def __init__(self, repo: "Repo", jobs: int, threads: int, echo: Callable[[str], None] = print,
                 warm: bool = True) -> None:
        if jobs < 1:
            raise ValueError(f"repro: --jobs must be at least 1, not {jobs}")
        if threads < 1:
            raise ValueError(f"repro: --threads must be at least 1, not {threads}")
        self.repo, self.jobs, self.threads, self._echo = repo, jobs, threads, echo
        self._out_lock = threading.Lock()
        self._running: list[_Running] = []
        self._warm = WarmStarter() if warm and can_fork_here() else None
        self._unwritten: list["Stage"] = []  # committed, their dvc.lock entries not yet written
        self._written = time.monotonic()

    def say(self, line: str) -> None:
        """Write one line for the user, never interleaved with another stage's line."""
        with self._out_lock:
            self._echo(line)

    def _env(self, stage: "Stage") -> dict[str, str]:
        from dvc.stage.run import prepare_kwargs

        env = prepare_kwargs(stage)["env"]
        for var in _THREAD_VARS:
            env[var] = str(self.threads)
        return env

    def _needs_run(self, stage: "Stage") -> bool:
        """Whether ``stage``'s command must run; what ``dvc repro`` does before it, under the repo lock: skip an
        unchanged stage, restore one the run cache holds, or record the deps it starts from."""
        from dvc.stage.cache import RunCacheNotFoundError

        with repo_lock(self.repo, self.say):
            if not stage.changed():
                self.say(f"Stage '{stage.addressing}' didn't change, skipping")
                return False
            try:
                self.repo.stage_cache.restore(stage)
            except RunCacheNotFoundError:
                stage.save_deps()
                return True
            self._commit(stage, seconds=0.0)
            return False

    def _commit(self, stage: "Stage", seconds: float) -> None:
        """What ``dvc repro`` does after a stage's command: hash deps and outs, save the run cache, move the outs
        into the cache, and write the stage's entry of ``dvc.lock``; call under the repo lock.

        Writing ``dvc.lock`` means DVC reading and rewriting the whole file in round-trip YAML: on smoke's ~90
        stages, each naming the code files it runs, that is ~700 KB and seconds of CPU per write, during which a
        slot idles. So the entry of a stage that ran under ``LOCK_BATCH_S`` (``seconds``) waits, and is written
        with the next stage's, once that much time has passed since the last write, or at the end of the run
        (interrupted or failed too). Only a hard kill (SIGKILL, power loss) can lose such entries, and then only
        stages shorter than ``LOCK_BATCH_S`` that finished within the last ``LOCK_BATCH_S`` run again."""
        stage.save()
        stage.commit()
        self._unwritten.append(stage)
        if seconds >= LOCK_BATCH_S or time.monotonic() - self._written >= LOCK_BATCH_S:
            self._write_lock()

    def _write_lock(self) -> None:
        """Write the entries of every committed stage not yet in ``dvc.lock``, one write per ``dvc.yaml``."""
        by_file: dict[str, list["Stage"]] = {}
        for stage in self._unwritten:
            by_file.setdefault(stage.dvcfile.path, []).append(stage)
        for stages in by_file.values():
            stages[0].dvcfile.dump_stages(stages, update_pipeline=False)
        self._unwritten.clear()
        self._written = time.monotonic()

    def flush_lock(self) -> None:
        """Write the ``dvc.lock`` entries still waiting (under the repo lock)."""
        if self._unwritten:
            with repo_lock(self.repo, self.say):
                self._write_lock()

    def _start(self, stage: "Stage") -> _Running:
        self.say(f"Running stage '{stage.addressing}':")
        self.say(f"> {stage.cmd}")
        # The stage shares this process group (so does the fork server), so a Ctrl-C or the app's stop reaches it
        # directly, as in dvc repro.
        argv = warm_argv(stage.cmd) if self._warm else None
        proc: _Process
        if argv and self._warm:
            proc, stream = self._warm.start(argv, stage.wdir, self._env(stage), self.threads)
        else:
            proc = popen = subprocess.Popen(
                stage.cmd, shell=True, cwd=stage.wdir, env=self._env(stage), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1,
            )
            assert popen.stdout is not None
            stream = popen.stdout
        run = _Running(stage, proc, time.monotonic())
        run.reader = threading.Thread(target=self._pump, args=(run, stream), daemon=True)
        run.reader.start()
        return run

    def _pump(self, run: _Running, stream: IO[str]) -> None:
        name = run.stage.addressing
        with stream:
            for line in stream:
                line = line.rstrip("\n")
                run.tail.append(line)
                # A progress bar redraws with carriage returns: show only its latest state.
                self.say(f"[{name}] {line.rsplit(chr(13), 1)[-1]}")

    def run(self, stages: list["Stage"], keep_going: bool = False) -> list[str]:
        """Run ``stages`` (dependencies first, as :func:`plan` orders them); returns the failed stages' messages.

        A failure stops new starts (with ``keep_going``: only of the failed stage's dependants); the stages
        already running finish and are committed. On an interrupt the running stages (which share this
        process group, so got it too) are waited for and left uncommitted: they run again next time.
        """
        needs = _upstream(self.repo, stages)
        pending = start_order(stages, needs)
        done: set = set()
        failed: set = set()
        failures: list[str] = []
        self.say(f"Running {len(stages)} stages, up to {self.jobs} at a time, {self.threads} torch threads each")
        try:
            while pending or self._running:
                if not failures or keep_going:
                    self._start_ready(pending, needs, done, failed)
                if not self._running:
                    break
                finished = self._wait_any()
                self._running.remove(finished)
                if not self._finish(finished):
                    failed.add(finished.stage)
                    failures.append(self._failure(finished))
                else:
                    done.add(finished.stage)
        except KeyboardInterrupt:
            for run in self._running:
                run.proc.wait()
            raise
        finally:
            self.flush_lock()
        if failures and pending:
            self.say(f"Not run because a stage failed: {', '.join(s.addressing for s in pending)}")
        return failures

    def _start_ready(self, pending: list["Stage"], needs: dict, done: set, failed: set) -> None:
        # Start every stage whose dependencies are done, while there is room; a stage downstream of a failure
        # stays pending (and is reported as not run).
        for stage in list(pending):
            if len(self._running) >= self.jobs:
                return
            if needs[stage] & failed:
                failed.add(stage)
            if not needs[stage] <= done:
                continue
            pending.remove(stage)
            if self._needs_run(stage):
                self._running.append(self._start(stage))
            else:
                done.add(stage)

    def _finish(self, run: _Running) -> bool:
        """Record a finished command: commit it when it succeeded. Whether it did."""
        assert run.reader is not None
        run.reader.join()
        seconds = time.monotonic() - run.started
        if run.proc.returncode != 0:
            self.say(f"ERROR: stage '{run.stage.addressing}' failed with exit code {run.proc.returncode} "
                     f"after {seconds:.1f} s")
            return False
        with repo_lock(self.repo, self.say):
            self._commit(run.stage, seconds)
        cpu = getattr(run.proc, "cpu_seconds", None)
        self.say(f"Finished stage '{run.stage.addressing}' in {seconds:.1f} s"
                 + (f", CPU {cpu:.1f} s" if cpu is not None else ""))
        return True

    @staticmethod
    def _failure(run: _Running) -> str:
        tail = "\n".join(f"    {line}" for line in run.tail)
        return f"stage '{run.stage.addressing}' failed with exit code {run.proc.returncode}; its last lines:\n{tail}"

    def _wait_any(self) -> _Running:
        # Stage commands run for seconds to hours: polling a few times a second costs nothing measurable.
        while True:
            for run in self._running:
                if run.proc.poll() is not None:
                    return run
            time.sleep(0.1)


def repro(root: Path, targets: Iterable[str] = (), jobs: int = 2, threads: int | None = None,
          keep_going: bool = False, echo: Callable[[str], None] = print, warm: bool = True) -> int:
    """``dvc repro TARGETS`` with up to ``jobs`` stage commands at a time in project ``root``; the exit code
    (0 when every stage ran or was up to date). ``warm``: fork ``advtui ...`` commands from a process that
    has imported torch (:mod:`advtui.pipeline.warmstart`) rather than start each as a new interpreter."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        runner = ParallelRepro(repo, jobs, threads or default_threads(jobs), echo, warm=warm)
        with repo_lock(repo, runner.say):
            stages = plan(repo, targets)
        try:
            failures = runner.run(stages, keep_going=keep_going)
        except KeyboardInterrupt:
            runner.say("Interrupted: stages not yet committed will run again next time")
            return 130
    for failure in failures:
        print(f"ERROR: {failure}", file=sys.stderr)
    if not failures:
        echo("Data and pipelines are up to date.")
    return 1 if failures else 0
