"""minigen.checkpoint: nested dicts to .npz and back, atomic writes, model and optimiser
round trips."""
import os
import zipfile

import numpy as np
import pytest

import minigen as mg
from minigen import checkpoint, nn, optim


def test_round_trip_of_a_nested_dict(tmp_path, device):
    path = tmp_path / "state.npz"
    weight = mg.randn(3, 2, device=device)
    state = {
        "model": {"fc.weight": weight, "fc.bias": np.arange(2, dtype=np.float32)},
        "epoch": 7, "lr": 0.5, "done": True, "name": "vae",
        "betas": (0.9, 0.999),
        "groups": [{"params": [0, 1], "lr": 0.1}, {"params": [2], "lr": 0.2}],
        "empty_list": [],
    }
    checkpoint.save(path, state)
    loaded = checkpoint.load(path)
    assert sorted(loaded) == sorted(state)
    np.testing.assert_array_equal(loaded["model"]["fc.weight"], weight.numpy())
    assert loaded["model"]["fc.weight"].dtype == np.float32
    assert isinstance(loaded["model"]["fc.weight"], np.ndarray)  # on the CPU
    np.testing.assert_array_equal(loaded["model"]["fc.bias"], [0.0, 1.0])
    # numbers come back as 0-d arrays, strings as str
    assert loaded["epoch"].shape == () and int(loaded["epoch"]) == 7
    assert float(loaded["lr"]) == 0.5 and bool(loaded["done"]) is True
    assert loaded["name"] == "vae" and isinstance(loaded["name"], str)
    np.testing.assert_array_equal(loaded["betas"], [0.9, 0.999])
    # a list of dicts comes back as a dict keyed by position
    assert sorted(loaded["groups"]) == ["0", "1"]
    np.testing.assert_array_equal(loaded["groups"]["1"]["params"], [2])
    assert float(loaded["groups"]["0"]["lr"]) == 0.1
    assert loaded["empty_list"].shape == (0,)


def test_flatten_joins_keys_with_slashes():
    flat = checkpoint.flatten({"a": {"b": 1, "c": {"d": np.zeros(2)}}, 3: "x"})
    assert list(flat) == ["a/b", "a/c/d", "3"]
    assert checkpoint.unflatten(flat)["a"]["c"]["d"].shape == (2,)


def test_the_file_is_an_ordinary_npz_without_pickle(tmp_path):
    path = tmp_path / "plain.npz"
    checkpoint.save(path, {"a": {"b": np.ones(3)}})
    with np.load(path, allow_pickle=False) as archive:
        assert archive.files == ["a/b"]
        np.testing.assert_array_equal(archive["a/b"], np.ones(3))


def test_the_path_is_used_as_given(tmp_path):
    path = tmp_path / "sub" / "model.ckpt"
    checkpoint.save(path, {"x": 1})
    assert os.listdir(tmp_path / "sub") == ["model.ckpt"]  # folder made, no '.npz' added


@pytest.mark.parametrize("state, message", [
    ({"a/b": 1}, "free of '/'"),
    ({"a": None}, "cannot store 'a' of type NoneType"),
    ({"a": {"b": object()}}, "cannot store 'a/b'"),
    ({"a": np.array([{}, 1], dtype=object)}, "object array"),
])
def test_unstorable_values_are_clear_errors(tmp_path, state, message):
    with pytest.raises((TypeError, ValueError), match=message):
        checkpoint.save(tmp_path / "bad.npz", state)
    assert os.listdir(tmp_path) == []  # nothing written, no temporary file left


def test_state_must_be_a_dict(tmp_path):
    with pytest.raises(TypeError, match="state must be a dict, got list"):
        checkpoint.save(tmp_path / "x.npz", [1, 2])


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere.npz"
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        checkpoint.load(path)


def test_a_crash_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    checkpoint.save(path, {"w": np.arange(4.0)})
    before = path.read_bytes()

    real_write_array = np.lib.format.write_array
    written = []

    def crash_after_one_array(file, array, **kwargs):
        if written:
            raise KeyboardInterrupt("simulated crash in the middle of the file")
        written.append(True)
        real_write_array(file, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", crash_after_one_array)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, {"w": np.zeros(4), "v": np.zeros(100)})
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]  # the temporary file was removed
    np.testing.assert_array_equal(checkpoint.load(path)["w"], np.arange(4.0))


def test_a_half_written_file_is_never_at_the_target_path(tmp_path, monkeypatch):
    """Even if the process dies before cleaning up, only a temporary file is half written."""
    path = tmp_path / "model.npz"
    checkpoint.save(path, {"w": np.arange(3.0)})
    seen_at_crash = []

    def die(source, target):
        seen_at_crash.append(sorted(os.listdir(tmp_path)))
        raise OSError("simulated power cut before the rename")

    monkeypatch.setattr(os, "replace", die)
    with pytest.raises(OSError, match="power cut"):
        checkpoint.save(path, {"w": np.zeros(3)})
    monkeypatch.undo()
    temporaries = [name for name in seen_at_crash[0] if name != "model.npz"]
    assert len(temporaries) == 1 and temporaries[0].startswith(".tmp-")
    assert zipfile.is_zipfile(tmp_path / "model.npz")
    np.testing.assert_array_equal(checkpoint.load(path)["w"], np.arange(3.0))


# ---------------------------------------------------------------- models and optimisers


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        self.register_buffer("scale", mg.full((4,), 2.0))

    def forward(self, x):
        return self.body(x * self.scale)


def test_model_round_trip_gives_identical_outputs(tmp_path, device):
    mg.manual_seed(1)
    model = Classifier().to(device)
    checkpoint.save(tmp_path / "model.npz", {"model": model.state_dict()})
    mg.manual_seed(2)
    fresh = Classifier().to(device)
    x = mg.randn(5, 4, device=device)
    assert not np.allclose(fresh(x).numpy(), model(x).numpy())
    fresh.load_state_dict(checkpoint.load(tmp_path / "model.npz")["model"])
    assert fresh.body[0].weight.device == device
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())


def _train(model, opt, scheduler, steps, seed):
    rng = np.random.default_rng(seed)
    device = model.body[0].weight.device
    for _ in range(steps):
        x = mg.tensor(rng.standard_normal((6, 4)), dtype=mg.float32, device=device)
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()
        scheduler.step()


@pytest.mark.parametrize("make", [
    lambda params: optim.Adam(params, lr=0.01, betas=(0.5, 0.9), amsgrad=True),
    lambda params: optim.AdamW(params, lr=0.01, weight_decay=0.1),
    lambda params: optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True),
], ids=["Adam", "AdamW", "SGD"])
def test_optimiser_round_trip_continues_identically(tmp_path, device, make):
    mg.manual_seed(0)
    model = Classifier().to(device)
    opt = make(model.parameters())
    scheduler = optim.StepLR(opt, step_size=2, gamma=0.5)
    ema = optim.ExponentialMovingAverage(model, decay=0.9)
    _train(model, opt, scheduler, 3, seed=0)
    ema.update()
    path = tmp_path / "run.npz"
    checkpoint.save(path, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                           "scheduler": scheduler.state_dict(), "ema": ema.state_dict(),
                           "step": 3})

    _train(model, opt, scheduler, 3, seed=1)  # the run that was not interrupted
    ema.update()

    state = checkpoint.load(path)
    mg.manual_seed(5)
    resumed = Classifier().to(device)
    resumed.load_state_dict(state["model"])
    resumed_opt = make(resumed.parameters())
    resumed_opt.load_state_dict(state["optimizer"])
    resumed_scheduler = optim.StepLR(resumed_opt, step_size=2, gamma=0.5)
    resumed_scheduler.load_state_dict(state["scheduler"])
    resumed_ema = optim.ExponentialMovingAverage(resumed, decay=0.5)
    resumed_ema.load_state_dict(state["ema"])
    assert int(state["step"]) == 3
    _train(resumed, resumed_opt, resumed_scheduler, 3, seed=1)
    resumed_ema.update()

    for (key, a), b in zip(model.state_dict().items(), resumed.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=key)
    assert resumed_scheduler.get_last_lr() == scheduler.get_last_lr()
    for key, value in ema.shadow.items():
        np.testing.assert_array_equal(mg.tensor(resumed_ema.shadow[key]).numpy(),
                                      mg.tensor(value).numpy(), err_msg=key)
    # the restored options have their Python types again, as a fresh optimiser has
    for name, value in opt.param_groups[0].items():
        if name != "params":
            assert type(resumed_opt.param_groups[0][name]) is type(value), name
            assert resumed_opt.param_groups[0][name] == value, name
    for p, q in zip(opt.param_groups[0]["params"], resumed_opt.param_groups[0]["params"]):
        assert type(resumed_opt.state[q].get("step", 0)) is int
        assert resumed_opt.state[q].keys() == opt.state[p].keys()


def test_optimiser_state_before_any_step_round_trips(tmp_path):
    model = Classifier()
    opt = optim.Adam(model.parameters())
    checkpoint.save(tmp_path / "fresh.npz", {"optimizer": opt.state_dict()})
    state = checkpoint.load(tmp_path / "fresh.npz")["optimizer"]
    assert "state" not in state  # an empty dict is not stored
    resumed = optim.Adam(Classifier().parameters(), lr=0.5)
    resumed.load_state_dict(state)
    assert resumed.state == {} and resumed.param_groups[0]["lr"] == 1e-3


def test_a_saved_file_gets_the_usual_permissions(tmp_path):
    """mkstemp's temporary file is owner-only; the checkpoint must not stay that way."""
    path = tmp_path / "state.npz"
    checkpoint.save(path, {"w": np.zeros(2)})
    mask = os.umask(0)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~mask)
