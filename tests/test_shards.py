"""Sharded construction and robust accuracy (advtui.shards): two ranks make what one process makes."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import advtui
import shard_worker
from advtui.experiments.common import save_classifier
from advtui.models.registry import create_model
from advtui import distributed, shards


def test_chunks_go_round_the_ranks(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert list(shards.mine(range(0, 10, 3))) == [0, 3, 6, 9] and distributed.is_main()
    assert shards.attack_shard() is None  # one process: the plain loop, no process group
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert list(shards.mine(range(0, 10, 3))) == [0, 3, 6, 9]  # outside split(): every chunk, as rank 0 alone
    with shards.split():
        assert list(shards.mine(range(0, 10, 3))) == [3, 9] and not distributed.is_main()
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match=r"RANK=2 WORLD_SIZE=2: need 0 <= RANK < WORLD_SIZE"):
        distributed.rank_and_size()
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ValueError, match="expected integers"):
        distributed.rank_and_size()


def test_rank_0_waits_for_the_chunks_of_the_others(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(shards, "POLL_S", 0.0)
    written = {3: iter([None, None, "chunk 3"])}  # rank 1's chunk appears on the third look

    def load(item):
        return next(written[item]) if item in written else None

    with shards.split():
        assert shards.collect([0, 3], {0: "chunk 0"}, load, lambda b: f"chunk-{b}") == ["chunk 0", "chunk 3"]
    assert "rank 0: waiting for chunk-3 from rank 1" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_ranks_write_the_same_dataset_and_accuracy_as_one_process(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = save_classifier(create_model("small_cnn"), tmp_path / "model.safetensors", paradigm="supervised",
                            params={})
    one = tmp_path / "one"
    metrics = shard_worker.construct(model, one / "D_det.safetensors")
    reference = shard_worker.evaluate(model)
    linf, l2 = reference.per_attack.values()
    assert 0 < reference.robust_acc == l2 < linf < reference.clean_acc == 1.0  # each attack broke some points

    two = tmp_path / "two"
    two.mkdir()
    env = {**os.environ, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(advtui.__file__).parents[1])}
    ranks = [subprocess.Popen([sys.executable, shard_worker.__file__, str(model), str(two)],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, stderr=subprocess.PIPE, text=True)
             for r in range(2)]
    for rank in ranks:
        _, err = rank.communicate(timeout=900)  # a hang guard only: the ranks take seconds
        assert rank.returncode == 0, err

    assert _sha256(two / "D_det.safetensors") == _sha256(one / "D_det.safetensors")
    assert not (two / ".D_det.parts").exists()  # rank 0 merged, then removed the chunks
    assert metrics["n"] == 10
    for r in range(2):
        got = torch.load(two / f"robust-{r}.pt", weights_only=True)
        assert torch.equal(got["robust"], reference.robust) and torch.equal(got["clean"], reference.clean)
        assert got["per_attack"] == reference.per_attack and got["per_part"] == reference.per_part
    # rank 0's resume file is one any number of ranks continues: one process reads the finished evaluation
    # back and attacks nothing
    monkeypatch.setattr("advtui.attacks.robust_accuracy.pgd_attack", lambda *a, **k: pytest.fail("attacked again"))
    resumed = shard_worker.evaluate(model, two / "state")
    assert torch.equal(resumed.robust, reference.robust) and resumed.per_part == reference.per_part
