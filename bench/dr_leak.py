"""D_R leak diagnostic (run by hand): how much of the source's planted pattern a D_R inversion copies.

Trains an L2-robust source on the synthetic data of params.yaml (with --tile/--norm/--eps overrides), checks
that its logits ignore the pattern (accuracy with each test image's pattern swapped for the next class's),
inverts --n sources from other-class starts as construct@D_R does, and reports the projection of what the
inversion added onto the unit source-label pattern (label_proj; the planted norm is 0.5) and onto the
start's pattern (start_proj), with the ground-truth probe agreements. --retrain N trains the E4 model on N
inverted images for --retrain-epochs and reports its clean and L2-0.25 PGD accuracy.

    .venv/bin/python bench/dr_leak.py --tile 8 --n 200          # the prototype's tile: label_proj ~0.6
    .venv/bin/python bench/dr_leak.py --tile 16 --n 1000 --retrain 1000 --retrain-epochs 5
"""
import argparse
import dataclasses
import json
import tempfile
import time

import torch
from advtui.catalog.params import load_params
from advtui.experiments.common import natural_split
from advtui.experiments.construct import source_images
from advtui.models.registry import create_model
from advtui.paradigms.supervised import train_classifier, accuracy
from advtui.catalog.training import AdversarialConfig
from advtui.catalog.training import AugmentConfig
from advtui.attacks.inversion import invert, pick_other_starts
from advtui.attacks.pgd import pgd_attack
from advtui.data.ground_truth import probe_agreement
from advtui.data.synthetic import nonrobust_patterns
from advtui.runtime import seed_everything
from advtui.data.imageset import ImageSet

torch.set_num_threads(1)
ap = argparse.ArgumentParser()
ap.add_argument("--arch", default="small_cnn")
ap.add_argument("--eps", type=float, default=1.0)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--epochs", type=int, default=4)
ap.add_argument("--noise", type=float, default=0.0)
ap.add_argument("--norm", type=float, default=None, help="nonrobust_norm override")
ap.add_argument("--tile", type=int, default=None)
ap.add_argument("--inv-steps", type=int, default=100)
ap.add_argument("--inv-size", type=float, default=1.0)
ap.add_argument("--n", type=int, default=300)
ap.add_argument("--retrain", type=int, default=0, help="images to invert and retrain on (0 = skip)")
ap.add_argument("--retrain-epochs", type=int, default=None, help="default: retrain.train.epochs")
ap.add_argument("--wd", type=float, default=0.0)
ap.add_argument("--train-size", type=int, default=None)
a = ap.parse_args()
p = load_params("params.yaml")
syn = p.data.synthetic
if a.norm is not None: syn = dataclasses.replace(syn, nonrobust_norm=a.norm)
if a.tile is not None: syn = dataclasses.replace(syn, tile=a.tile)
data = dataclasses.replace(p.data, synthetic=syn, train_size=a.train_size or p.data.train_size)
t0 = time.time()
seed_everything(0)
train = natural_split(data, "train", 0); test = natural_split(data, "test", 0)
model = create_model(a.arch, num_classes=10, img_size=32)
cfg = dataclasses.replace(p.sources.train, epochs=a.epochs, weight_decay=a.wd, augment=AugmentConfig(noise_std=a.noise))
adv = AdversarialConfig(norm="l2", eps=a.eps, steps=a.steps)
ck = tempfile.mktemp(suffix=".ckpt")
train_classifier(model, train, cfg, adv, checkpoint=ck, progress=False)
model.eval().requires_grad_(False)
clean = accuracy(model, test)
pats = nonrobust_patterns(syn)  # (C,3,H,W)
# swap test: replace each test image's pattern with the next class's
x, y = test.float_images(), test.labels
swapped = (x - pats[y] + pats[(y + 1) % 10]).clamp(0, 1)
with torch.no_grad(): swap_acc = (model(swapped).argmax(1) == y).float().mean().item()
rob = (model(pgd_attack(model, x[:500], y[:500], norm="l2", eps=0.25, step_size=0.05, steps=20)).argmax(1) == y[:500]).float().mean().item()
src = source_images(max(a.n, a.retrain), data, 0)
n = max(a.n, a.retrain)
gen = torch.Generator().manual_seed(0)
start = pick_other_starts(src.labels, gen)
xs, xst = src.float_images(), src.float_images(start)
with torch.no_grad(): target = model.features(xs)
xo = invert(model.features, xst, target, steps=a.inv_steps, step_size=a.inv_size)
delta = xo - xst
unit = pats.flatten(1) / pats.flatten(1).norm(dim=1, keepdim=True)
lab_proj = (delta.flatten(1) * unit[src.labels]).sum(1).mean().item()
start_proj = (delta.flatten(1) * unit[src.labels[start]]).sum(1).mean().item()
agr = probe_agreement(xo, src.labels, syn, starts=xst)
res = dict(vars(a), clean=clean, swap_acc=swap_acc, rob025=rob, label_proj=lab_proj, start_proj=start_proj, **agr,
           delta_norm=delta.flatten(1).norm(dim=1).mean().item())
if a.retrain:
    dr = ImageSet(images=xo[: a.retrain].to(torch.float16), labels=src.labels[: a.retrain].clone(), classes=src.classes)
    m2 = create_model("small_cnn", num_classes=10, img_size=32)
    rcfg = dataclasses.replace(p.retrain.train, epochs=a.retrain_epochs or p.retrain.train.epochs)
    train_classifier(m2, dr, rcfg, None, checkpoint=tempfile.mktemp(suffix=".ckpt"), progress=False)
    m2.eval().requires_grad_(False)
    res["dr_clean"] = accuracy(m2, test)
    res["dr_rob025"] = (m2(pgd_attack(m2, x[:500], y[:500], norm="l2", eps=0.25, step_size=0.05, steps=20)).argmax(1) == y[:500]).float().mean().item()
res["wall"] = time.time() - t0
print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items()}))
