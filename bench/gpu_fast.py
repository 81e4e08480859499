"""Ilyas et al.'s headline on full CIFAR-10 on one GPU, in one command: the `gpu-fast` profile's five stages.

Installs carried wheels (``--wheels``), unpacks the CIFAR-10 ImageFolder archive into the profile's
``data.root`` (``--archive``, skipped when it is already there), writes ``params.yaml`` from the ``gpu-fast``
profile, runs ``advtui stage`` for source@standard, construct@D_rand, construct@D_det, retrain@D_rand and
retrain@D_det in that order (no DVC: the GPU machine has none), times each, and prints one table: D_rand and
D_det clean accuracy on the natural test set beside the release's 63% / 44%, their target hit rates, the
wall time per stage and in all, and the GPU. With ``$OUT`` set (the device tool) or ``--out``, the table
(``gpu_fast.md``), the figures (``gpu_fast.json``) and every stage's output (``gpu_fast.log``) go there too.

    python3 bench/gpu_fast.py --wheels .whl --archive .device/cifar10-jpeg.tar.gz   # the GPU run (bench/README.md)
    python3 bench/gpu_fast.py --toy --workdir /tmp/toy --archive tiny.tar.gz       # the same steps, CPU-sized

``--toy`` shrinks the recipe (small_cnn, one epoch, two PGD steps) so the whole path runs on a CPU in about a
minute on a tiny ImageFolder archive; the test suite runs it (tests/test_gpu_fast.py). It needs only the
standard library and what the stages need: the driver itself imports advtui's torch-free catalogue.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the GPU machine runs a copy of the checkout, advtui not installed

import yaml  # noqa: E402  (after the path: advtui is imported from the checkout)

from advtui.catalog.names import recipe  # noqa: E402
from advtui.catalog.params import load_params, use_profile  # noqa: E402
from advtui.catalog.paths import PARAMS_FILE  # noqa: E402
from advtui.catalog.paths import dataset_path, metrics_path  # noqa: E402
from advtui.catalog.published import E4_PUBLISHED  # noqa: E402
from advtui.files import write_json, write_text  # noqa: E402

PROFILE = "gpu-fast"
SETS = ("D_rand", "D_det")
#: The headline's stages, in the order each one's inputs need: the source, the two sets, a classifier on each.
STAGES: tuple[tuple[str, str], ...] = (
    ("source", recipe(SETS[0]).model),
    *(("construct", s) for s in SETS),
    *(("retrain", s) for s in SETS),
)
#: ``--toy``: the profile with CPU-sized recipes (dotted params keys); the data sizes stay the profile's (all
#: of the archive's images), so a tiny archive keeps the run tiny.
TOY = {
    "model.arch": "small_cnn",
    "sources.train.epochs": 1, "sources.train.batch_size": 32, "sources.train.warmup_epochs": 0,
    "retrain.train.epochs": 1, "retrain.train.batch_size": 32, "retrain.train.warmup_epochs": 0,
    "construct.relabel.steps": 2, "construct.chunk": 64,
    "attack.l2.steps": 2, "attack.linf.steps": 2, "attack.batch_size": 64,
}
SITE = Path(tempfile.gettempdir()) / "advtui-site"  # where carried wheels are installed


def install_wheels(folder: Path) -> Path:
    """Install every wheel in ``folder`` (no index, no dependencies: the folder holds them all) into ``SITE``."""
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        raise SystemExit(f"--wheels {folder}: holds no .whl files; fetch them as bench/README.md 'GPU run' says")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--no-cache-dir", "--upgrade", "--target", str(SITE), *map(str, wheels)], check=True)
    return SITE


def unpack(archive: Path, root: Path) -> None:
    """Extract the ImageFolder ``archive`` (train/, test/ at its top) into ``root``, unless ``root`` has it already.

    Extracts beside ``root`` and renames, so an interrupted unpack never leaves a half tree that looks complete.
    """
    if (root / "train").is_dir() and (root / "test").is_dir():
        return
    if not archive.is_file():
        raise SystemExit(f"--archive {archive}: not found; copy ../shared/data/cifar10-jpeg.tar.gz there (bench/README.md)")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}."))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # only left when the extraction failed


def write_params(workdir: Path, toy: bool) -> Path:
    """``workdir/params.yaml`` from the gpu-fast profile (with the ``TOY`` recipes when ``toy``), validated."""
    path = workdir / PARAMS_FILE
    use_profile(PROFILE, path)
    if toy:
        raw = yaml.safe_load(path.read_text())
        for dotted, value in TOY.items():
            *parents, key = dotted.split(".")
            section = raw
            for name in parents:
                section = section[name]
            section[key] = value
        write_text(path, yaml.safe_dump(raw, sort_keys=False))
    load_params(path)
    return path


def run_stage(family: str, name: str, params: Path, workdir: Path, env: dict[str, str], log) -> float:
    """Run ``advtui stage FAMILY NAME``, its output echoed and logged; its wall seconds. A failure ends the run
    with one line naming the stage (its own error is the last lines above)."""
    print(f"== stage {family}@{name}", flush=True)
    log.write(f"== stage {family}@{name}\n")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "advtui", "stage", family, name, "--params", str(params)],
                            cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        log.write(line)
    seconds = time.perf_counter() - started
    if proc.wait() != 0:
        sys.stdout.flush()
        raise SystemExit(f"stage {family}@{name} failed (exit {proc.returncode}) after {seconds:.0f} s; see its output above")
    return seconds


def headline(workdir: Path) -> list[dict[str, object]]:
    """D_rand's and D_det's rows: clean accuracy of the classifier trained on each (the natural test set, natural
    labels), the published figure, and the target hit rate of the set's construction."""
    rows = []
    for name in SETS:
        e4 = json.loads((workdir / metrics_path("E4", name)).read_text())
        built = json.loads((workdir / metrics_path("construct", name)).read_text())
        rows.append({"set": name, "clean_acc": e4["clean_acc"], "published": E4_PUBLISHED[name][0] / 100,
                     "source": E4_PUBLISHED[name][2], "target_hit_rate": built["target_hit_rate"],
                     "n_train": e4["n_train"], "n_test": e4["n"], "seeds": len(e4["seeds"])})
    return rows


def device_name() -> str:
    """The GPU the stages ran on (torch's name for it), or the CPU's when there is none."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"no GPU (CPU: {platform.processor() or platform.machine()})"


def table(rows: list[dict[str, object]], times: dict[str, float], source_acc: float, device: str, toy: bool) -> str:
    """The run's result as markdown: the headline beside the release, then the time of every stage."""
    lines = [f"# Ilyas et al. headline, profile {PROFILE}{' (--toy)' if toy else ''}, {device}", "",
             f"Source model (standard): clean accuracy {source_acc:.1%}.", "",
             "| set | clean acc (ours) | release | target hit rate | train images | test images |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['set']} | {r['clean_acc']:.1%} | {r['published']:.0%} | {r['target_hit_rate']:.1%} "
              f"| {r['n_train']} | {r['n_test']} |" for r in rows]
    lines += ["", f"Release: {rows[0]['source']}, ResNet-50, full CIFAR-10.", "",
              "| stage | wall s |", "| --- | ---: |"]
    lines += [f"| {stage} | {seconds:.1f} |" for stage, seconds in times.items()]
    lines.append(f"| total | {sum(times.values()):.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, help="CIFAR-10 ImageFolder .tar.gz, unpacked into data.root if absent")
    parser.add_argument("--wheels", type=Path, help="folder of wheels to install first (the GPU machine's missing packages)")
    parser.add_argument("--workdir", type=Path, default=ROOT, help="where params.yaml and data/ go (default: the checkout)")
    parser.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None,
                        help="folder for gpu_fast.{md,json,log} (default: $OUT when set)")
    parser.add_argument("--toy", action="store_true", help="CPU-sized recipes, for a tiny archive (the test)")
    args = parser.parse_args(argv)

    workdir = args.workdir.resolve()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    extra = [str(install_wheels(args.wheels))] if args.wheels else []
    env["PYTHONPATH"] = os.pathsep.join([*extra, str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    params_file = write_params(workdir, args.toy)
    root = Path(load_params(params_file).data.root or "")
    if args.archive is not None:
        unpack(args.archive.resolve(), root if root.is_absolute() else workdir / root)

    out = args.out
    log_path = (out / "gpu_fast.log") if out else workdir / "data" / "gpu_fast.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    device = device_name()
    times: dict[str, float] = {}
    summary: dict[str, object] = {"profile": PROFILE, "toy": args.toy, "device": device, "stages": []}
    # the log is written as the stages run, and the summary after each one: a run killed at its time limit
    # still leaves in $OUT the time of every stage it finished and the output of the one it was in
    with open(log_path, "w", encoding="utf-8") as log:
        for family, name in STAGES:
            times[f"{family}@{name}"] = run_stage(family, name, params_file, workdir, env, log)
            summary.update(stages=[{"stage": k, "seconds": v} for k, v in times.items()],
                           total_seconds=sum(times.values()))
            if out:
                write_json(out / "gpu_fast.json", summary)
    for name in SETS:  # what the rows rest on, checked before they are read
        if not (workdir / dataset_path(name)).is_file():
            raise SystemExit(f"{dataset_path(name)}: missing after construct@{name}; rerun the script")
    rows = headline(workdir)
    source_acc = json.loads((workdir / metrics_path("E1", STAGES[0][1])).read_text())["clean_acc"]
    text = table(rows, times, source_acc, device, args.toy)
    print(text, flush=True)
    if out:
        write_text(out / "gpu_fast.md", text)
        write_json(out / "gpu_fast.json", {**summary, "rows": rows, "source_clean_acc": source_acc})
    return 0


if __name__ == "__main__":
    sys.exit(main())
