"""Every book model's training step, minigen beside its PyTorch twin, in one table.

    python -m benchmarks              # every row, at 1 and 2 threads (about 20 minutes)
    python -m benchmarks --quick      # six rows, 1 and 2 threads (about 3 minutes)
    python -m benchmarks --rows vae,gpt --threads 2 --repeats 20

Each row is one training step as the model's own train_step does it (forward, loss,
backward, optimiser) on the same network and the same weights in both frameworks,
float32, CPU. Each model's own benchmark (python -m benchmarks.<model>) checks that the
two compute the same outputs from the same weights and compares their training; this
table only times them.

Every cell runs in a fresh process: OpenBLAS reads its thread count when it starts, and a
fresh process keeps one framework's cached memory out of the other's figure. In it the row
builds both networks, then runs the step of one framework `warmup` times and `repeats`
times more, and reports

- ms: the median of the timed steps (wall clock);
- peak MB: how far the process's resident memory rose above its size just before the first
  step, over all the steps (Linux's VmHWM, reset through /proc/self/clear_refs). It counts
  the optimiser's state, which the first step creates, and everything a step holds at
  once: activations, gradients, im2col buffers. Both frameworks are measured the same
  way; it is "-" where /proc is missing.

Each model issue adds its row to ROWS: a function (torch) -> {"minigen": step,
"pytorch": step}, each step a function of no arguments.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np

import minigen as mg
from benchmarks.conv import median_ms

Steps = dict[str, Callable[[], object]]


# ---------------------------------------------------------------- the rows


def overhead_chain(torch) -> Steps:
    from benchmarks import overhead
    return {"minigen": overhead.chain_minigen(1000), "pytorch": overhead.chain_torch(torch, 1000)}


def overhead_mlp(torch) -> Steps:
    from benchmarks import overhead
    return {"minigen": overhead.mlp_minigen(128), "pytorch": overhead.mlp_torch(torch, 128)}


def conv_chain(torch) -> Steps:
    from benchmarks import conv
    mg_fn = conv.forward_backward(mg, mg.nn.functional, conv.LAYERS, 100, "cpu")
    torch_fn = conv.forward_backward(torch, torch.nn.functional, conv.LAYERS, 100, "cpu")
    return {"minigen": mg_fn, "pytorch": torch_fn}


def autoencoder(torch) -> Steps:
    from benchmarks.twins import autoencoder as twin_module
    from benchmarks.twins import common
    from minigen.models import autoencoder as model_module
    from minigen.recipes import adam
    model = model_module.Autoencoder()
    twin = common.torch_copy(torch, model)
    x = _clothes(100)
    optimizers = adam(model, twin_module.LR)
    trainer = twin_module.TwinTrainer(torch, twin)
    return {"minigen": lambda: model_module.train_step(model, optimizers, mg.tensor(x)),
            "pytorch": lambda: trainer.step(x)}


def _vae(torch, make) -> Steps:
    from benchmarks import vae
    model = make()
    network = vae.torch_network(torch, model)
    x = _clothes(100)
    return {"minigen": vae.minigen_step(model, mg.tensor(x)),
            "pytorch": vae.torch_step(torch, model, network, torch.from_numpy(x))}


def vae_clothes(torch) -> Steps:
    from minigen.models import vae
    return _vae(torch, lambda: vae.make_vae(latent_dim=2))


def vae_faces(torch) -> Steps:
    from minigen.models import vae
    return _vae(torch, lambda: vae.make_faces_vae(latent_dim=200, width=32))


def dcgan_book(torch) -> Steps:
    from benchmarks.twins import common, dcgan as twin_module
    from minigen.models import dcgan
    model = dcgan.DCGAN(width=64)
    twin = common.torch_copy(torch, model, common.TorchDraws(torch))
    real = _digits(128)
    optimizers = dcgan.make_optimizers(model)
    trainer = twin_module.TwinTrainer(torch, twin, common.TorchDraws(torch), model.z_dim)
    return {"minigen": lambda: dcgan.train_step(model, optimizers, mg.tensor(real)),
            "pytorch": lambda: trainer.step(real)}


def wgan_gp_book(torch) -> Steps:
    from benchmarks.twins import common, wgan_gp as twin_module
    from minigen.models import wgan_gp
    model = wgan_gp.WGANGP(width=64, dropout=0.3)
    twin = common.torch_copy(torch, model, common.TorchDraws(torch))
    real = _digits(128)
    optimizers = wgan_gp.make_optimizers(model)
    trainer = twin_module.TwinTrainer(torch, twin, common.TorchDraws(torch), model,
                                      wgan_gp.LR)
    return {"minigen": lambda: wgan_gp.train_step(model, optimizers, mg.tensor(real)),
            "pytorch": lambda: trainer.step(real)}


def cgan_book(torch) -> Steps:
    from benchmarks.twins import cgan as twin_module, common
    from minigen.models import cgan, wgan_gp
    model = cgan.ConditionalGAN(width=64, dropout=0.3)
    twin = common.torch_copy(torch, model, common.TorchDraws(torch))
    real = _digits(128)
    labels = np.random.default_rng(0).integers(0, model.num_classes, 128)
    optimizers = wgan_gp.make_optimizers(model)
    trainer = twin_module.TwinTrainer(torch, twin, common.TorchDraws(torch), model,
                                      wgan_gp.LR)
    return {"minigen": lambda: cgan.train_step(model, optimizers, mg.tensor(real),
                                               mg.tensor(labels)),
            "pytorch": lambda: trainer.step(real, labels)}


def pixelcnn_book(torch) -> Steps:
    from benchmarks import pixelcnn as bench
    from minigen.models import pixelcnn
    from minigen.recipes import adam
    model = pixelcnn.make_pixelcnn()
    twin = bench.torch_pixelcnn(torch, model)
    x = pixelcnn.load_pixelcnn_images("test")[:pixelcnn.BATCH_SIZE].astype(np.int64)
    optimizers = adam(model, pixelcnn.LR)
    step = bench.torch_step(torch, twin, torch.optim.Adam(twin.parameters(), lr=pixelcnn.LR))
    x_minigen, x_torch = mg.tensor(x), torch.from_numpy(x)
    return {"minigen": lambda: pixelcnn.train_step(model, optimizers, x_minigen),
            "pytorch": lambda: step(x_torch)}


def realnvp_book(torch) -> Steps:
    from benchmarks import realnvp as bench
    from minigen.models import realnvp
    from minigen.recipes import adam
    model = realnvp.make_realnvp()
    x = realnvp.load_moons("train", n=bench.TIMED_BATCH)
    optimizers = adam(model, realnvp.LR)
    flow = bench.torch_flow(torch, model)
    step = bench.torch_step(torch, flow, torch.optim.Adam(flow.parameters(), lr=realnvp.LR))
    x_minigen, x_torch = mg.tensor(x), torch.from_numpy(x)
    return {"minigen": lambda: realnvp.train_step(model, optimizers, x_minigen),
            "pytorch": lambda: step(x_torch)}


def ebm_book(torch) -> Steps:
    from benchmarks import ebm as bench
    from minigen.datasets import load_mnist
    from minigen.models import ebm
    model = ebm.make_ebm()
    x = ebm.to_ebm_input(load_mnist("train")[0][:bench.TIMED_BATCH])
    optimizers = ebm.make_optimizers(model)
    model.buffer.push(model.buffer.noise(ebm.BUFFER_SIZE))
    twin = bench.torch_energy(torch, model)
    buffer = bench.TorchBuffer(torch)
    buffer.push(torch.rand(ebm.BUFFER_SIZE, *ebm.IMAGE_SHAPE) * 2 - 1)
    step = bench.torch_step(torch, twin, torch.optim.Adam(twin.parameters(), lr=ebm.LR),
                            buffer, ebm.STEPS)
    x_minigen, x_torch = mg.tensor(x), torch.from_numpy(x)
    return {"minigen": lambda: ebm.train_step(model, optimizers, x_minigen),
            "pytorch": lambda: step(x_torch)}


def _diffusion(torch, make, size: int) -> Steps:
    from benchmarks import diffusion as bench
    from minigen.models import diffusion
    model = make()
    images, _, _ = bench.lesson_data(size)
    x = images[:bench.TIMED_BATCH]
    model.adapt(images)
    twin = bench.TorchDiffusion(torch, model)
    optimizers = diffusion.make_optimizers(model)
    noise, t, _ = bench.draws(np.random.default_rng(0), len(x), x.shape[1:])
    return {"minigen": lambda: bench.minigen_step(model, optimizers, x, None, noise, t, None),
            "pytorch": lambda: twin.step(x, None, noise, t, None)}


def diffusion_book(torch) -> Steps:
    from minigen.models import diffusion
    return _diffusion(torch, diffusion.make_diffusion, 32)


def diffusion_lesson(torch) -> Steps:
    from benchmarks import diffusion as bench
    from minigen.models import diffusion
    lesson = bench.LESSON
    return _diffusion(torch, lambda: diffusion.make_diffusion(
        widths=lesson["widths"], block_depth=lesson["depth"], embedding_dims=lesson["embedding"]),
        lesson["size"])


def lstm_book(torch) -> Steps:
    from benchmarks import lstm as bench
    from minigen.models import lstm_text, text
    model = lstm_text.make_lstm()
    train_ids, _ = bench.data()
    windows = text.random_windows(train_ids, lstm_text.BATCH_SIZE, lstm_text.SEQUENCE_LENGTH, 0)
    optimizers = lstm_text.make_optimizers(model)
    twin = bench.torch_twin(model)
    step = bench.torch_step(torch, twin, torch.optim.Adam(twin.parameters(), lr=lstm_text.LR))
    batch = mg.tensor(windows)
    return {"minigen": lambda: lstm_text.train_step(model, optimizers, batch),
            "pytorch": lambda: step(torch.from_numpy(windows))}


def gpt_nanogpt(torch) -> Steps:
    from benchmarks import gpt as bench
    from minigen.datasets import load_shakespeare
    from minigen.models import gpt, text
    model = gpt.make_gpt()
    ids = model.vocab.encode(load_shakespeare("train"))
    windows = text.random_windows(ids, gpt.BATCH_SIZE, gpt.CONTEXT, seed=0)
    optimizers = gpt.make_optimizers(model)
    twin = bench.torch_twin(model)
    step = bench.torch_step(torch, twin, *bench.torch_optimizer(torch, twin, gpt.ITERATIONS))
    batch = mg.tensor(windows)
    return {"minigen": lambda: gpt.train_step(model, optimizers, batch),
            "pytorch": lambda: step(torch.from_numpy(windows))}


def _clothes(n: int) -> np.ndarray:
    """n Fashion-MNIST test images as chapter 3 takes them: (N, 1, 32, 32) in [0, 1]."""
    from minigen.datasets import load_fashion_mnist, to_unit_32
    return to_unit_32(load_fashion_mnist("test")[0][:n])


def _digits(n: int) -> np.ndarray:
    """n MNIST test digits as chapter 4 takes them: (N, 1, 32, 32) in [-1, 1]."""
    from minigen.datasets import load_mnist, pad_to_32, to_symmetric
    return pad_to_32(to_symmetric(load_mnist("test")[0][:n]), value=-1.0)[:, None]


# name: (what the row times, its maker, in --quick)
ROWS: dict[str, tuple[str, Callable[..., Steps], bool]] = {
    "chain": ("1000-op chain of scalar-vector ops, backward", overhead_chain, True),
    "mlp": ("MLP 784-256-256-10, batch 128, Adam", overhead_mlp, True),
    "conv7": ("ch3's 7 conv layers chained, fwd+bwd, batch 100", conv_chain, False),
    "autoencoder": ("ch3 autoencoder, batch 100", autoencoder, False),
    "vae": ("ch3 VAE (2-d latent), batch 100", vae_clothes, True),
    "faces_vae": ("ch3 faces-style VAE (200-d, width 32), batch 100", vae_faces, False),
    "dcgan": ("ch4 DCGAN, width 64, batch 128", dcgan_book, False),
    "wgan_gp": ("ch4 WGAN-GP (3 critic + 1 gen), width 64, batch 128", wgan_gp_book, False),
    "cgan": ("ch4 conditional GAN, width 64, batch 128", cgan_book, False),
    "pixelcnn": ("ch5 PixelCNN (book's), batch 128", pixelcnn_book, False),
    "lstm": ("ch5 LSTM text model (book's), batch 32", lstm_book, True),
    "realnvp": ("ch6 RealNVP on two moons, batch 256", realnvp_book, True),
    "ebm": ("ch7 EBM (60 Langevin steps + update), batch 128", ebm_book, False),
    "diffusion": ("ch8 diffusion U-Net (book's, 32x32), batch 64", diffusion_book, False),
    "diffusion_lesson": ("ch8 diffusion U-Net (lesson's, 16x16), batch 64", diffusion_lesson,
                         False),
    "gpt": ("ch9 GPT (nanoGPT CPU setting), batch 12", gpt_nanogpt, True),
}


# ---------------------------------------------------------------- one cell, in this process


def _proc_status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Give the memory freed so far back to the system, then restart the peak count.

    Building a row frees memory (a loaded dataset, sliced to one batch); the C library
    keeps freed memory for reuse (minigen asks it to, at import), and a step reusing it
    would look free. malloc_trim(0) returns it first, so the peak counts what the step
    itself needs, in both frameworks alike."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except (OSError, AttributeError):
        return False


def measure_here(row: str, library: str, repeats: int, warmup: int = 2) -> dict:
    """Build `row`'s steps, then time `library`'s and measure its peak memory."""
    try:
        import torch  # only the benchmarks use PyTorch; minigen never imports it
    except ImportError:
        torch = None  # a row may still time minigen alone (the tests' rows do)
    from minigen.backend import blas_threads
    threads = blas_threads()
    if torch is not None:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
    mg.manual_seed(0)
    step = ROWS[row][1](torch)[library]
    resting = _proc_status_mb("VmRSS") if _reset_peak() else None
    ms = median_ms(step, repeats, warmup=warmup)
    peak = _proc_status_mb("VmHWM")
    return {"row": row, "library": library, "threads": threads, "ms": ms,
            "peak_mb": None if resting is None or peak is None else peak - resting}


def measure_in_fresh_process(row: str, library: str, threads: int, repeats: int,
                             warmup: int) -> dict:
    environment = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads),
                   "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--cell", row, library,
                          "--repeats", str(repeats), "--warmup", str(warmup)],
                         env=environment, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"benchmarks: the {library} cell of row {row!r} at {threads} "
                           f"thread(s) failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the table


def openblas_kernels() -> str:
    """Which of OpenBLAS's kernels NumPy runs on ('SkylakeX', 'Haswell', ...), read from the
    loaded library, and whether OPENBLAS_CORETYPE forced them: OpenBLAS picks them for the
    CPU as it loads, and some machines force older ones (AVX2 where AVX-512 runs), which
    slows every matrix product; the table says which it measured."""
    forced = os.environ.get("OPENBLAS_CORETYPE")
    note = f", forced by OPENBLAS_CORETYPE={forced}" if forced else ", OpenBLAS's own choice"
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "unknown (no /proc/self/maps)"
    paths = sorted({line.split()[-1] for line in maps.splitlines()
                    if "openblas" in line.lower() and line.split()[-1].startswith("/")})
    for path in paths:
        library = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_get_corename64_", "openblas_get_corename64_",
                       "openblas_get_corename"):
            get_corename = getattr(library, symbol, None)
            if get_corename is not None:
                get_corename.restype = ctypes.c_char_p
                return f"OpenBLAS {get_corename().decode()}{note}"
    return "not OpenBLAS (or not found)"


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


HEADER = (f"{'model':18s} {'thr':>3s} {'minigen ms':>11s} {'pytorch ms':>11s} {'ratio':>6s} "
          f"{'minigen MB':>11s} {'pytorch MB':>11s} {'ratio':>6s}")


def table_line(result: dict) -> str:
    ours, theirs = result["minigen"], result["pytorch"]
    memory_ratio = "-"
    if ours["peak_mb"] is not None and theirs["peak_mb"] and theirs["peak_mb"] > 0:
        memory_ratio = f"{ours['peak_mb'] / theirs['peak_mb']:.2f}"
    return (f"{result['row']:18s} {result['threads']:3d} {ours['ms']:11.2f} "
            f"{theirs['ms']:11.2f} {ours['ms'] / theirs['ms']:6.2f} "
            f"{_mb(ours['peak_mb']):>11s} {_mb(theirs['peak_mb']):>11s} {memory_ratio:>6s}")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="only the rows marked quick, 5 repeats (about 3 minutes)")
    parser.add_argument("--rows", default=None,
                        help=f"comma-separated rows (default all): {', '.join(ROWS)}")
    parser.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed steps per cell (default 10; 5 with --quick)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before them")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--cell", nargs=2, metavar=("ROW", "LIBRARY"), default=None,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeats = args.repeats or (5 if args.quick else 10)
    if args.cell is not None:
        row, library = args.cell
        print(json.dumps(measure_here(row, library, repeats, args.warmup)))
        return []
    if args.rows is None:
        rows = [name for name, (_, _, quick) in ROWS.items() if quick or not args.quick]
    else:
        rows = [name.strip() for name in args.rows.split(",")]
        unknown = [name for name in rows if name not in ROWS]
        if unknown:
            parser.error(f"unknown rows {unknown}; the rows are {', '.join(ROWS)}")
    threads = [int(t) for t in args.threads.split(",")]
    try:
        import torch  # noqa: F401
    except ImportError:
        parser.error("the table needs PyTorch beside minigen: pip install torch")
    print(f"one training step, float32, cpu, median of {repeats} after {args.warmup} "
          f"warm-up steps; peak MB: resident memory above the process before the steps")
    print(f"NumPy's BLAS kernels: {openblas_kernels()}")
    for name in rows:
        print(f"  {name}: {ROWS[name][0]}")
    print()
    print(HEADER, flush=True)
    results = []
    for name in rows:
        for count in threads:
            cells = {library: measure_in_fresh_process(name, library, count, repeats,
                                                       args.warmup)
                     for library in ("minigen", "pytorch")}
            results.append({"row": name, "threads": count, **cells})
            print(table_line(results[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results

