"""What each of AutoAttack's attacks adds in E6: robust accuracy after each part, on a finished pipeline's runs.

For every E6 run of a finished `dvc repro` (its ``data/metrics/E6/*.json`` and probes), reruns AutoAttack whole
(every attack of the version the run got, chained on the points still standing as E6 runs it, same images,
same seed) and prints the robust accuracy after each attack, the seconds it took and the stored figure. An
attack whose row never drops below the one before it broke no point the earlier ones left: this is the
evidence behind the smoke profile's ``e6.*.autoattack_skip`` (README "Attack speed").

Run by hand in the finished project (about 15 minutes of one CPU core for the smoke profile):
``cd RUN && OMP_NUM_THREADS=1 PYTHONPATH=REPO REPO/.venv/bin/python REPO/bench/autoattack_parts.py [--json out.json]``.
"""
import argparse
import json
import time
from pathlib import Path

import torch

from advtui.attacks.autoattack import run_autoattack
from advtui.catalog.params import load_params
from advtui.catalog.paths import probe_path
from advtui.experiments.common import natural_split
from advtui.experiments.linear_probe import load_probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    params = load_params("params.yaml")
    test = natural_split(params.data, "test", params.seed)
    rows = {}
    for path in sorted(Path("data/metrics/E6").glob("*.json")):
        stored = json.loads(path.read_text())
        model = load_probe(probe_path(path.stem), device=torch.device("cpu"))
        version = stored["autoattack_version"]
        size = params.e6.attacked_size(eot=version == "rand")
        images = test.select(min(size, len(test)), params.seed) if size is not None else test
        for norm, budget in (("l2", params.e6.l2), ("linf", params.e6.linf)):
            if f"robust_acc_autoattack_{norm}" not in stored:
                continue
            start = time.perf_counter()
            result = run_autoattack(model, images.float_images(), images.labels, norm=norm, eps=budget.autoattack_eps,
                                    version=version, batch_size=params.e6.batch_size, seed=params.seed)
            (parts,) = result.per_part.values()
            rows[f"{path.stem} {norm}"] = {"after_each": parts, "seconds": round(time.perf_counter() - start, 1),
                                           "stored": stored[f"robust_acc_autoattack_{norm}"]}
            chain = " -> ".join(f"{part} {acc:.2f}" for part, acc in parts.items())
            print(f"{path.stem:14s} {norm:4s} {chain}  ({rows[f'{path.stem} {norm}']['seconds']} s; "
                  f"stored {rows[f'{path.stem} {norm}']['stored']:.2f})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
