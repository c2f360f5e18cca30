"""The CuPy stand-in (tests/fake_cupy.py) is as strict as it claims, and what it counts.

The first tests check the stand-in itself and run in every pass. The others use it as
minigen's "cuda" device, so they run where MINIGEN_FAKE_CUDA=1 (CI's second pass): the
proof that a NumPy call on device data fails, and the host syncs of a training step.
"""
from __future__ import annotations

import fake_cupy
import numpy as np
import pytest

import minigen as mg
from minigen import backend

# ---------------------------------------------------------------- the stand-in itself


@pytest.mark.parametrize("numpy_call", [
    np.asarray, np.exp, np.sum, lambda x: np.stack([x]), lambda x: np.pad(x, 1),
    lambda x: np.ones(3) + x, lambda x: x * np.ones(3), lambda x: np.float64(1) + np.asarray(x),
], ids=["asarray", "exp", "sum", "stack", "pad", "ndarray+x", "x*ndarray", "scalar"])
def test_numpy_on_a_device_array_is_a_type_error(numpy_call):
    x = fake_cupy.arange(3.0)
    with pytest.raises(TypeError):
        numpy_call(x)


def test_copies_between_the_sides_are_explicit():
    host = np.arange(3.0)
    x = fake_cupy.asarray(host)
    host[0] = 7.0  # the device holds a copy
    assert x.get().tolist() == [0.0, 1.0, 2.0]
    assert isinstance(x.get(), np.ndarray) and not isinstance(x, np.ndarray)
    np.testing.assert_array_equal(fake_cupy.asnumpy(x * 2), [0.0, 2.0, 4.0])
    assert (np.float32(2) * x).get().tolist() == [0.0, 2.0, 4.0]  # NumPy scalars are fine
    assert fake_cupy.get_array_module(x) is fake_cupy
    assert fake_cupy.get_array_module(host) is np


def test_results_stay_on_the_device_as_cupy_returns_them():
    x = fake_cupy.arange(6.0).reshape(2, 3)
    for result in (x.sum(), x[0, 1], fake_cupy.exp(x)[1, 2], x.max(), fake_cupy.allclose(x, x)):
        assert isinstance(result, fake_cupy.ndarray)
    assert not isinstance(x.data, fake_cupy.ndarray)  # a memory pointer, as in CuPy
    # integer indices out of range wrap around, as CuPy's do (NumPy raises)
    assert fake_cupy.arange(3)[fake_cupy.asarray([1, 3])].get().tolist() == [1, 0]


@pytest.mark.parametrize("name", ["errstate", "ndindex", "broadcast_shapes", "frombuffer",
                                  "seterr"])
def test_names_cupy_lacks_are_missing(name):
    assert hasattr(np, name)
    with pytest.raises(AttributeError):
        getattr(fake_cupy, name)


def test_ufunc_at_random_and_stride_tricks_are_cupys():
    a = fake_cupy.zeros(3)
    fake_cupy.add.at(a, fake_cupy.asarray([0, 0, 2]), 1.0)
    assert a.get().tolist() == [2.0, 0.0, 1.0]
    assert not hasattr(fake_cupy.multiply, "at")  # CuPy scatters add, max, min only
    rng = fake_cupy.random.default_rng(0)
    assert rng.standard_normal((2,), dtype=np.float32).dtype == np.float32
    for missing in ("normal", "choice", "permutation", "shuffle"):  # NumPy's Generator has
        assert not hasattr(rng, missing)
    windows = fake_cupy.lib.stride_tricks.sliding_window_view(fake_cupy.arange(5), 3)
    assert windows.shape == (3, 3)
    with pytest.raises(NotImplementedError):
        fake_cupy.lib.stride_tricks.sliding_window_view(fake_cupy.arange(5), 3,
                                                        writeable=True)


def test_host_syncs_are_counted_where_they_happen():
    x = fake_cupy.arange(4.0)
    with fake_cupy.count_syncs() as syncs:
        y = fake_cupy.exp(x) * 2 + x.sum()  # all on the device: no sync
    assert syncs.count == 0
    with fake_cupy.count_syncs() as syncs:
        float(y[0])
        y.max().item()
        bool(y[1] > 0)
        y.get()
        repr(y)
        y[y > 2]  # a boolean mask: the result's size depends on the data
    assert [kind for kind, _ in syncs.sites] == ["float", "item", "bool", "get", "repr",
                                                 "boolean mask"]
    assert all("test_fake_cupy.py" in where for _, where in syncs.sites)


# ---------------------------------------------------------------- as minigen's "cuda" device


@pytest.fixture
def stand_in() -> None:
    """Skip unless minigen's "cuda" device is the stand-in (MINIGEN_FAKE_CUDA=1)."""
    if not (backend.cuda_is_available() and backend.cupy_module() is fake_cupy):
        pytest.skip("needs MINIGEN_FAKE_CUDA=1: 'cuda' on the CuPy stand-in")


def test_numpy_on_a_device_tensors_data_fails(request, device):
    """The proof that the stand-in is strict: this test calls np.exp on a tensor's data,
    as a library bug would, and under the stand-in it must fail (xfail strict: should it
    ever pass there, the stand-in has gone lax and the suite fails). On the CPU it
    passes; real CuPy hands np.exp to cupy.exp through NumPy's dispatch, so there too."""
    if device == "cuda" and backend.cupy_module() is fake_cupy:
        request.applymarker(pytest.mark.xfail(raises=TypeError, strict=True,
                                              reason="the stand-in refuses NumPy calls"))
    x = mg.tensor([0.0, 1.0], device=device)
    np.testing.assert_allclose(backend.to_device(np.exp(x.data), "cpu"), [1.0, np.e])


def _wgan_gp_step():
    from minigen.models import wgan_gp
    model = wgan_gp.WGANGP(z_dim=8, width=4).to("cuda")
    optimizers = wgan_gp.make_optimizers(model)
    real = mg.rand(4, 1, 32, 32, device="cuda") * 2 - 1
    return lambda: wgan_gp.train_step(model, optimizers, real)


def _cgan_step():
    from minigen.models import cgan, wgan_gp
    model = cgan.ConditionalGAN(width=4).to("cuda")
    optimizers = wgan_gp.make_optimizers(model)
    real = mg.rand(4, 1, 32, 32, device="cuda") * 2 - 1
    labels = mg.arange(4, device="cuda")
    return lambda: cgan.train_step(model, optimizers, real, labels)


def _dcgan_step():
    from minigen.models import dcgan
    model = dcgan.DCGAN(z_dim=8, width=4).to("cuda")
    optimizers = dcgan.make_optimizers(model)
    real = mg.rand(4, 1, 32, 32, device="cuda") * 2 - 1
    return lambda: dcgan.train_step(model, optimizers, real)


def _vae_step():
    from minigen.models import vae
    model = vae.make_vae().to("cuda")
    optimizers = {"model": mg.optim.Adam(model.parameters())}
    x = mg.rand(4, 1, 32, 32, device="cuda")
    return lambda: vae.train_step(model, optimizers, x)


def _classifier_step():
    from minigen.models import classifier
    model = classifier.Classifier().to("cuda")
    optimizers = {"model": mg.optim.Adam(model.parameters())}
    x, labels = mg.rand(4, 1, 28, 28, device="cuda"), mg.arange(4, device="cuda")
    return lambda: classifier.train_step(model, optimizers, x, labels)


def _pixelcnn_step():
    from minigen.models import pixelcnn
    from minigen.recipes import adam
    model = pixelcnn.make_pixelcnn(filters=8, residual_blocks=1).to("cuda")
    optimizers = adam(model, pixelcnn.LR)
    x = mg.randint(0, pixelcnn.LEVELS, (2, 1, 16, 16), device="cuda")
    return lambda: pixelcnn.train_step(model, optimizers, x)


def _realnvp_step():
    from minigen.models import realnvp
    from minigen.recipes import adam
    model = realnvp.make_realnvp().to("cuda")
    optimizers = adam(model, realnvp.LR)
    x = mg.randn(8, 2, device="cuda")
    return lambda: realnvp.train_step(model, optimizers, x)


def _ebm_step():
    from minigen.models import ebm
    model = ebm.make_ebm(steps=3).to("cuda")
    optimizers = ebm.make_optimizers(model)
    x = mg.rand(4, 1, 32, 32, device="cuda") * 2 - 1
    return lambda: ebm.train_step(model, optimizers, x)


def _diffusion_step():
    from minigen.models import diffusion
    model = diffusion.make_diffusion(widths=(4, 8), block_depth=1, embedding_dims=4)
    model.to("cuda")
    optimizers = diffusion.make_optimizers(model)
    x = mg.rand(2, 1, 16, 16, device="cuda")
    return lambda: diffusion.train_step(model, optimizers, x)


def _text_step(module: str, **settings):
    def make():
        import importlib
        models = importlib.import_module(f"minigen.models.{module}")
        maker = models.make_gpt if module == "gpt" else models.make_lstm
        model = maker(**settings).to("cuda")
        optimizers = models.make_optimizers(model)
        windows = mg.randint(0, 65, (2, 9), device="cuda")
        return lambda: models.train_step(model, optimizers, windows)
    return make


@pytest.mark.parametrize("make_step, most", [
    (_wgan_gp_step, 1),     # its numbers, read at once (was 13: an .item() per loss)
    (_dcgan_step, 1),       # losses and accuracy counts, read at once (was 4)
    (_cgan_step, 2),        # + one_hot's label check (was 15)
    (_vae_step, 2),         # + binary_cross_entropy's check that x_hat is in [0, 1] (was 4)
    (_classifier_step, 2),  # + nll_loss's check of the labels (was 6)
    (_pixelcnn_step, 2),    # + forward's check of the levels (was 3: a second one)
    (_realnvp_step, 2),     # + forward's check that the points are finite
    (_ebm_step, 1),         # the buffer's draw skips a bounds check (was 2)
    (_diffusion_step, 1),   # the EMA's decay is computed on the device (was 2)
    (_text_step("lstm_text", hidden=8, embedding_dim=4), 3),  # + the ids' bounds (one
    (_text_step("gpt", layers=1, heads=2, width=8, context=8), 3),  # read) and the targets'
], ids=["wgan_gp", "dcgan", "cgan", "vae", "classifier", "pixelcnn", "realnvp", "ebm",
        "diffusion", "lstm", "gpt"])  # lstm was 6 and gpt 9 (clip_grad_norm_ read its norm)
def test_host_syncs_per_training_step(stand_in, make_step, most):
    """Each read of a number from the GPU makes it finish all the work queued before:
    a training step should read its losses once, not once per loss."""
    step = make_step()
    step()  # the first step makes the optimisers' state
    with fake_cupy.count_syncs() as syncs:
        losses = step()
    assert syncs.count <= most, f"{syncs.count} syncs in one step:\n{syncs.report()}"
    assert all(isinstance(value, float) for value in losses.values())
