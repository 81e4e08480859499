"""Speed-ups (channels_last, torch.compile) and precision for attacks, constructions and training: where "auto"
turns them on, and that they change how the model runs, never the answer or the model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advtui.attacks import speed as speed_module
from advtui.attacks.robust_accuracy import robust_accuracy
from advtui.attacks.speed import Speedups, resolve
from advtui.catalog.attacks import AttackSpec, SpeedConfig
from advtui.catalog.data import SyntheticConfig
from advtui.catalog.names import PARADIGMS, ROBUST_CL
from advtui.catalog.params import AttackParams, load_params, paradigm_run, parse_params, profile_path
from advtui.catalog.training import TrainConfig
from advtui.data.imageset import ImageSet
from advtui.data.synthetic import make_synthetic
from advtui.models import create_model
from advtui.paradigms.trainer import StepOut, fit, input_precision


def _small_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1),
        nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 4),
    ).eval()


def _large_cnn() -> nn.Sequential:
    """Over 1M parameters: ResNet-sized for the auto rule."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 8000))


def _grouped_cnn() -> nn.Sequential:
    """Convolutions with GroupNorm, as in the DDPM UNet."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(4, 8), nn.SiLU(), nn.Conv2d(8, 8, 3)).eval()


AUTO = SpeedConfig()


@pytest.mark.parametrize(
    ("model", "device", "expected"),
    [
        (_small_cnn, "cpu", Speedups(channels_last=True, compile=False)),  # compiling would outlast the evaluation
        (_large_cnn, "cpu", Speedups(channels_last=False, compile=True)),  # its parameters are the Linear's
        (_grouped_cnn, "cpu", Speedups(channels_last=False, compile=False)),  # GroupNorm is slower NHWC on a CPU
        (_grouped_cnn, "cuda", Speedups(channels_last=True, compile=False)),
        (_small_cnn, "cuda", Speedups(channels_last=True, compile=False)),  # compiling would outlast the evaluation
        (_large_cnn, "cuda", Speedups(channels_last=True, compile=True)),
        (lambda: nn.Sequential(nn.Flatten(), nn.Linear(2000, 1000)), "cuda", Speedups(channels_last=False, compile=True)),
        (_large_cnn, "mps", Speedups(channels_last=False, compile=False)),
    ],
)
def test_auto_turns_speedups_on_by_device_and_size(model, device: str, expected: Speedups) -> None:
    assert resolve(AUTO, model(), device) == expected


def test_on_and_off_override_auto() -> None:
    assert resolve(SpeedConfig(channels_last="on", compile="on"), _small_cnn(), "cpu") == Speedups(True, True)
    assert resolve(SpeedConfig(channels_last="off", compile="off"), _large_cnn(), "cuda") == Speedups(False, False)


def test_speed_params_default_auto_and_bad_values_name_the_key() -> None:
    assert AttackParams().speed == SpeedConfig("auto", "auto")
    with pytest.raises(ValueError, match=r"^attack\.speed\.compile: must be one of 'auto', 'on', 'off', got 'yes'"):
        parse_params({"attack": {"speed": {"compile": "yes"}}})
    with pytest.raises(ValueError, match=r"^channels_last: must be one of auto, on, off, got 'fast'"):
        SpeedConfig(channels_last="fast")  # type: ignore[arg-type]


def _evaluate(model: nn.Module, speed: SpeedConfig | None):
    x = torch.rand(120, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    spec = AttackSpec(norm="linf", eps=0.03, steps=4, step_size=0.01)
    result = robust_accuracy(model, x, y, [spec], batch_size=50, generator=torch.Generator().manual_seed(0), speed=speed)
    assert 0.2 < result.robust_acc < 0.8  # the attack breaks some points, not all: a comparison that can fail
    return result


def test_channels_last_same_answer_and_the_model_left_as_it_was() -> None:
    model = _small_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain = _evaluate(model, None)
    fast = _evaluate(model, SpeedConfig(channels_last="on", compile="off"))
    assert torch.equal(fast.robust, plain.robust)
    # the weights went NHWC for the evaluation only: same values, standard layout again (safetensors needs it)
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]) and value.is_contiguous(), name


def test_compiler_failure_falls_back_with_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """A missing compiler shows up at the first call, as one of dynamo's exceptions (checked by hand with
    CXX=/nonexistent/g++ on a conv net): the evaluation then runs the model uncompiled and says so once."""
    from torch._dynamo.exc import TorchDynamoException

    calls = []

    def no_compiler(model: nn.Module) -> object:
        def compiled(x: torch.Tensor) -> torch.Tensor:
            calls.append(x.shape[0])
            raise TorchDynamoException("InvalidCxxCompiler: No working C++ compiler found\nmore detail")

        return compiled

    monkeypatch.setattr(speed_module.torch, "compile", no_compiler)
    model = _small_cnn()
    plain = _evaluate(model, None)
    capsys.readouterr()
    fast = _evaluate(model, SpeedConfig(channels_last="off", compile="on"))
    assert torch.equal(fast.robust, plain.robust)
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["torch.compile unavailable (InvalidCxxCompiler: No working C++ compiler found); "
                     "running the model uncompiled"]
    assert len(calls) == 1


@pytest.mark.slow
def test_compiled_same_answer_and_code_cached_in_advtui_cache(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """A real compile: the same broken points, the compiled code in advtui's cache folder, where the next
    process finds it. A linear model keeps it to about 15 s on 2 busy cores (a small CNN takes a minute)."""
    monkeypatch.setenv("ADVTUI_CACHE", str(tmp_path))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)).eval()
    plain = _evaluate(model, None)
    fast = _evaluate(model, SpeedConfig(channels_last="off", compile="on"))
    assert torch.equal(fast.robust, plain.robust)
    assert any((tmp_path / "inductor").rglob("*"))


# --- training through the same speed-ups; the profiles' resolved settings -------------------------------------


def _train_configs(params) -> dict[str, TrainConfig]:
    """Every trainer recipe of a profile, by its params key."""
    recipes = {"sources.train": params.sources.train, "retrain.train": params.retrain.train,
               "retrain.springer": params.retrain.springer, "probe.train": params.probe.train}
    for name in (*PARADIGMS, ROBUST_CL):
        recipes[f"paradigms.{name}.train"] = paradigm_run(params.paradigms, name).train
    return recipes


def _natural_and_constructed() -> tuple[ImageSet, ImageSet]:
    natural = make_synthetic(SyntheticConfig(), 16, seed=0, split="train")
    constructed = ImageSet(images=natural.images.float() / 255, labels=natural.labels, classes=natural.classes,
                           meta={"source": "constructed", "arch": "D_det"})
    return natural, constructed


def test_smoke_runs_small_cnn_channels_last_and_nothing_else_on_a_cpu() -> None:
    """Smoke on a CPU: every recipe trains fp32 and nothing compiles (a compile costs more than smoke's runs);
    small_cnn's recipes and its evaluations and constructions run NHWC (1.2x training, 1.36x attack steps
    here, bench/README), but not the DDPM UNet or the ViT, which NHWC slows."""
    params = load_params(profile_path("smoke"))
    natural, constructed = _natural_and_constructed()
    model = create_model(params.model.arch)
    nhwc = {"sources.train", "retrain.train", "retrain.springer", "paradigms.SL.train", "paradigms.CL.train",
            f"paradigms.{ROBUST_CL}.train"}
    for key, cfg in _train_configs(params).items():
        for data in (natural, constructed):
            assert input_precision(cfg, data, device="cpu").precision == "fp32", key
        assert (cfg.channels_last, cfg.compile) == (key in nhwc, False), key
        assert resolve(cfg.speed, model, "cpu") == Speedups(channels_last=key in nhwc), key
    assert params.attack.speed == SpeedConfig()  # auto: small_cnn NHWC on a CPU, the UNet and the ViT plain
    assert resolve(params.attack.speed, model, "cpu") == Speedups(channels_last=True)


def test_gpu_fast_trains_bf16_on_natural_images_only_and_speeds_everything_up_on_cuda(capsys) -> None:
    """gpu-fast on CUDA: the source trains in bf16, the constructed sets in fp32 (DESIGN 4), all with
    channels_last and compile, and the constructions and evaluations too; on a CPU, "auto" is fp32."""
    params = load_params(profile_path("gpu-fast"))
    natural, constructed = _natural_and_constructed()
    resnet = create_model(params.model.arch)
    source, retrain = params.sources.train, params.retrain.train
    assert input_precision(source, natural, device="cuda").precision == "bf16"
    assert input_precision(retrain, constructed, device="cuda").precision == "fp32"
    assert "precision: fp32, not bf16, for constructed set D_det" in capsys.readouterr().err
    assert input_precision(source, natural, device="cpu").precision == "fp32"
    for speed in (source.speed, retrain.speed, params.attack.speed):
        assert resolve(speed, resnet, "cuda") == Speedups(channels_last=True, compile=True)


def test_training_steps_run_through_the_compiled_model_and_reach_its_parts(monkeypatch, tmp_path) -> None:
    """compile: the step's forward passes go through torch.compile's model (the same helper and cache as the
    attacks); a step that reads a part of the module (a probe's ``head``) still finds it; channels_last weights
    go back to the standard layout when training ends (safetensors needs it)."""
    calls: list[int] = []

    def fake_compile(model: nn.Module) -> object:
        def compiled(x: torch.Tensor) -> torch.Tensor:
            calls.append(x.shape[0])
            assert x.is_contiguous(memory_format=torch.channels_last)
            return model(x)

        return compiled

    monkeypatch.setattr(speed_module.torch, "compile", fake_compile)

    def step(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepOut:
        assert isinstance(module.head, nn.Linear)
        return StepOut(nn.functional.cross_entropy(module(x), y))

    natural, _ = _natural_and_constructed()
    model = create_model("small_cnn")
    cfg = TrainConfig(epochs=1, batch_size=8, channels_last=True, compile=True)
    metrics = fit(model, natural, cfg, step, checkpoint=tmp_path / "c.pt", progress=False)
    assert calls == [8, 8] and torch.isfinite(torch.tensor(metrics["train_loss"]))
    assert all(t.is_contiguous() for t in model.state_dict().values())


def test_train_speed_settings_are_true_false_or_auto() -> None:
    assert TrainConfig(channels_last=True, compile="auto").speed == SpeedConfig(channels_last="on", compile="auto")
    assert TrainConfig().speed == SpeedConfig(channels_last="off", compile="off")
    with pytest.raises(ValueError, match=r"^sources\.train\.compile: expected bool \| 'auto', got 'yes'"):
        parse_params({"sources": {"train": {"compile": "yes"}}})
