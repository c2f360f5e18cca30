# %% [markdown]
"""Lesson 13: text-to-image in miniature. Latent diffusion, prompts and guidance.

Stable Diffusion is chapter 8's diffusion model with three changes: it runs in the
small latent space of an autoencoder instead of on pixels, its U-Net reads a prompt
through cross-attention, and it samples with classifier-free guidance. This lesson
builds all three at Fashion-MNIST's scale: prompts are phrases such as "an ankle boot"
or "a pair of trousers", latents are 4 x 8 x 8.

  1. the data and the prompts: Fashion-MNIST at 32x32, a word tokenizer over the class
     phrases, <start>, padding and the mask;
  2. the autoencoder: a KL-regularised conv autoencoder to 4 x 8 x 8, trained first,
     its reconstructions, then frozen and its latents scaled to unit variance;
  3. why latent space: values per image, and the measured time of a training step of
     the same U-Net on pixels and on latents at the same batch size;
  4. the prompt encoder and the U-Net with cross-attention: shapes and sizes;
  5. training the diffusion model in latent space, the empty prompt 15% of the time;
  6. cross-attention maps: where each word of a prompt is looked at;
  7. samples for every class prompt at guidance 0, 1, 3 and 7;
  8. the conditional accuracy (the chapter-2 classifier reads the prompt's class) and
     the FID-style score against the guidance weight: fidelity against diversity.

    python -m lessons.ch13_latent_diffusion [--smoke] [--full] [--device cuda] [--seed N]

By default the autoencoder trains 400 steps and the denoiser (widths 32, 64, 96,
cross-attention at 8x8 and 4x4, 459k parameters) 1,500 steps, batches of 64. Measured
at 1 thread on a machine loaded by other jobs: 5.5 CPU-minutes, 5.7 min of wall clock
(autoencoder 57 CPU-s, diffusion 232 CPU-s); accuracy 0.87 at w = 3. --full trains 4
times as long. The
prompt encoder here is a learned embedding per word and per position; in DALL-E 2 and
Stable Diffusion CLIP's text transformer plays that role, in Imagen the T5 language
model, both trained on far more text than any image model sees. Figures go to
outputs/ch13_latent_diffusion/; `python -m minigen train latent_diffusion` trains the
model, `python -m minigen sample latent_diffusion --prompt "an ankle boot" --guidance 3`
draws from it.
"""

# %% Imports and settings
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import minigen as mg
from lessons.common import explain, lesson_parser, progress, save_figure, section, start
from minigen import plot
from minigen.datasets import load_fashion_mnist, to_unit_32
from minigen.models import diffusion
from minigen.models import latent_diffusion as ld
from minigen.models.classifier import load_classifier
from minigen.nn import device_of, evaluating
from minigen.optim import AdamW
from minigen.train import LossLog, fit

LESSON = "ch13_latent_diffusion"
SETTINGS = {
    "smoke": {"widths": (8, 16), "attention_levels": (0,), "embedding": 8, "prompt_dims": 8,
              "heads": 2, "images": 256, "autoencoder_steps": 4, "diffusion_steps": 4,
              "batch_size": 32, "timing_steps": 1, "per_class": 2, "ddim_steps": 2},
    "default": {"widths": ld.WIDTHS, "attention_levels": ld.ATTENTION_LEVELS,
                "embedding": ld.EMBEDDING_DIMS, "prompt_dims": ld.PROMPT_DIMS,
                "heads": ld.HEADS, "images": 60_000, "autoencoder_steps": 400,
                "diffusion_steps": 1500, "batch_size": 64, "timing_steps": 3,
                "per_class": 20, "ddim_steps": 20},
    "full": {"widths": ld.WIDTHS, "attention_levels": ld.ATTENTION_LEVELS,
             "embedding": ld.EMBEDDING_DIMS, "prompt_dims": ld.PROMPT_DIMS,
             "heads": ld.HEADS, "images": 60_000, "autoencoder_steps": 1600,
             "diffusion_steps": 6000, "batch_size": 64, "timing_steps": 5,
             "per_class": 100, "ddim_steps": 20},
}
GUIDANCE = [0.0, 1.0, 3.0, 7.0]  # steps 7 and 8
MAP_PROMPT = "an ankle boot"  # step 6
FID_POOL = 5000  # test images: the real side of the FID-style score


# %% 1. The data and the prompts
def load_data(settings: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training images (N, 1, 32, 32) in [0, 1] and labels, and test images."""
    images, labels = load_fashion_mnist("train")
    test, _ = load_fashion_mnist("test")
    n = settings["images"]
    train = to_unit_32(images[:n])
    tokenizer = ld.make_tokenizer()
    examples = ["an ankle boot", "a pair of trousers", ""]
    explain(f"""
        Fashion-MNIST padded to 32x32 in [0, 1] ({len(train)} training images). Each
        class has one or two phrases; a training image gets one of its class's at random.
        The tokenizer knows {len(tokenizer.vocabulary)} words; every prompt starts with
        <start> and is padded with <pad> (id 0) to {tokenizer.context_length} tokens, and
        the mask (token != 0) tells the attention which tokens are real. The empty prompt
        of guidance is <start> alone.""")
    for label, phrases in enumerate(ld.CLASS_PHRASES):
        print(f"  class {label}: {' | '.join(phrases)}")
    for prompt, tokens in zip(examples, tokenizer.encode(examples)):
        print(f"  {prompt!r:>22} -> {tokens.tolist()}  mask {(tokens != 0).astype(int).tolist()}")
    return train, labels[:n].astype(np.int64), to_unit_32(test[:FID_POOL])


# %% 2. The autoencoder
def train_autoencoder(model: ld.LatentDiffusion, images: np.ndarray, test: np.ndarray,
                      settings: dict, args: argparse.Namespace, out: Path
                      ) -> tuple[dict, list[Path]]:
    """Train the autoencoder alone, show reconstructions, freeze it, scale its latents."""
    optimizers = ld.make_optimizers(model)
    steps, batch = settings["autoencoder_steps"], settings["batch_size"]
    explain(f"""
        The encoder maps a 1x32x32 image to the mean and log-variance of q(z | x), z of
        shape {ld.LATENT_SHAPE}; the decoder maps z back to pixel probabilities. Loss: BCE
        summed over the pixels + {ld.KL_WEIGHT:g} KL(q(z|x) || N(0, I)): a small KL weight,
        as Stable Diffusion's, keeps nearly all the detail in z and only stops the latents
        from drifting to any scale. {steps} steps of Adam, batches of {batch}.""")
    log = LossLog()
    cpu, began = time.process_time(), time.perf_counter()
    fit(model, optimizers, ld.autoencoder_train_step, (images[:steps * batch],), 1, batch,
        seed=args.seed, device=args.device, on_step=log)
    seconds = time.perf_counter() - began
    cpu = time.process_time() - cpu
    device = device_of(model)
    x = mg.tensor(test[:1000], device=device)
    with evaluating(model), mg.no_grad():
        round_trip = model.decode(model.encode(x, sample=False))
        error = ((round_trip - x) ** 2).mean().item()
        shown = mg.cat([x[:10], round_trip[:10]]).numpy()
    figure = plot.image_grid(shown, out / "reconstructions.png", nrow=10,
                             title="test images (top) and their round trip through 4x8x8")
    print(f"saved {figure}")
    scale = model.set_latent_scale(images[-5000:])
    with evaluating(model), mg.no_grad():
        latents = model.encode(x).numpy()
    print(f"{steps} steps in {seconds:.0f} s ({cpu:.0f} CPU-s); reconstruction BCE "
          f"{np.mean(log['reconstruction'][:10]):.1f} -> "
          f"{np.mean(log['reconstruction'][-20:]):.1f} per image, KL "
          f"{np.mean(log['kl'][-20:]):.0f}")
    print(f"round trip of {len(x)} test images: mean squared error {error:.4f} per pixel")
    print(f"latent_scale = 1 / std = {scale:.4f}; scaled test latents: mean "
          f"{latents.mean():.3f}, std {latents.std():.3f}")
    explain("""
        From here on the autoencoder is frozen: the diffusion model never sees a pixel,
        only scaled latents, and decoding happens once, after sampling. Stable Diffusion's
        scale is 0.18215, found the same way on its own autoencoder.""")
    return {"mse": error, "scale": scale, "seconds": seconds, "cpu_seconds": cpu}, [figure]


# %% 3. Why latent space
def step_time(network: ld.TextConditionedUNet, shape: tuple, tokens: mg.Tensor,
              steps: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one training step of `network` on inputs of `shape`: the
    forward pass, the loss, the backward pass and an AdamW step (median of `steps`)."""
    optimizer = AdamW(network.parameters(), lr=1e-4)
    device = tokens.device
    walls, cpus = [], []
    for i in range(steps + 1):  # the first is a warm-up
        x = mg.randn(*shape, device=device)
        v = mg.rand(shape[0], 1, 1, 1, device=device)
        wall, cpu = time.perf_counter(), time.process_time()
        loss = (network(x, v, tokens) - x).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()
        if i:
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return float(np.median(walls)), float(np.median(cpus))


def why_latent(model: ld.LatentDiffusion, settings: dict) -> dict:
    """The same U-Net on 1x32x32 pixels and on 4x8x8 latents, batch_size each."""
    batch, device = settings["batch_size"], device_of(model)
    tokens = model.tokens([ld.CLASS_PROMPTS[i % 10] for i in range(batch)])
    make = {"pixels": ((batch, 1, 32, 32), 1), "latents": ((batch, *ld.LATENT_SHAPE), 4)}
    results = {}
    for name, (shape, channels) in make.items():
        network = ld.TextConditionedUNet(
            len(model.tokenizer), model.tokenizer.context_length, channels,
            settings["widths"], settings["attention_levels"], settings["embedding"],
            settings["prompt_dims"], settings["heads"]).to(device)
        wall, cpu = step_time(network, shape, tokens, settings["timing_steps"])
        results[name] = {"values": int(np.prod(shape[1:])), "wall": wall, "cpu": cpu}
    explain("""
        A diffusion model's U-Net runs once per training step and once (twice, with
        guidance) per sampling step, at the resolution of what it denoises. Here the
        same network, widths and batch, runs on pixels and on latents:""")
    for name, r in results.items():
        print(f"  {name:>8}: {r['values']:5d} values per image, one training step of batch "
              f"{batch}: {r['wall'] * 1000:6.0f} ms ({r['cpu'] * 1000:.0f} ms CPU)")
    ratio = results["pixels"]["cpu"] / results["latents"]["cpu"]
    results["ratio"] = ratio
    print(f"  latents are {ratio:.1f}x faster per step (CPU time), for "
          f"{results['pixels']['values'] / results['latents']['values']:.0f}x fewer values "
          f"and 16x fewer positions (8x8 against 32x32)")
    explain("""
        The convolutions' cost goes with the number of positions, H x W, times the
        widths; the latent's 4 channels only touch the first and last 1x1 convs. So the
        saving follows the 16x fewer positions, not the 4x fewer values. Stable
        Diffusion's autoencoder turns 3x512x512 = 786,432 values into 4x64x64 = 16,384,
        64 times fewer positions; the autoencoder runs once per image, the U-Net once
        per training step and once (twice, with guidance) per sampling step.""")
    return results


# %% 4. The prompt encoder and the U-Net with cross-attention
def describe(model: ld.LatentDiffusion) -> dict[str, int]:
    """Parameter counts and the cross-attention layers' shapes."""
    network = model.network
    counts = {"autoencoder": sum(p.data.size for p in model.autoencoder.parameters()),
              "prompt encoder": sum(p.data.size for p in network.prompt_encoder.parameters()),
              "U-Net": sum(p.data.size for p in network.parameters())}
    counts["U-Net"] -= counts["prompt encoder"]
    maps: list = []
    device = device_of(model)
    with evaluating(model), mg.no_grad():
        model.network(mg.zeros(1, *ld.LATENT_SHAPE, device=device),
                      mg.full((1, 1, 1, 1), 0.5, device=device), model.tokens(MAP_PROMPT),
                      attention_maps=maps)
    explain(f"""
        The prompt encoder: a learned vector per word and per position, summed and
        layer-normed: ({model.tokenizer.context_length} tokens, {network.prompt_encoder.dims}
        features) per prompt. It knows nothing but what the denoiser's loss teaches it. In
        DALL-E 2 and Stable Diffusion this is CLIP's text transformer (trained to match
        captions with images), in Imagen the T5 language model (trained on text alone),
        both frozen; a richer encoder is what lets those models read prompts they were
        never shown as such.

        The U-Net is chapter 8's, with a CrossAttention after the residual block of the
        levels {list(network.attention_levels)} on the way down and up: queries from the
        latent's positions, keys and values from the prompt's tokens, padded tokens
        masked. Its weights, one row per position, each summing to 1 over the tokens:""")
    for name, weights in maps:
        print(f"  {name}: weights {tuple(weights.shape)} (N, heads, positions, tokens)")
    for part, count in counts.items():
        print(f"  {part:>15}: {count:,} parameters")
    return counts


# %% 5. Training the diffusion model in latent space
def train_diffusion(model: ld.LatentDiffusion, images: np.ndarray, labels: np.ndarray,
                    settings: dict, args: argparse.Namespace, out: Path
                    ) -> tuple[dict, Path]:
    """Chapter 8's loss on the frozen encoder's latents, with prompts."""
    optimizers = ld.make_optimizers(model)
    steps, batch = settings["diffusion_steps"], settings["batch_size"]
    explain(f"""
        Each step: encode a batch of {batch} images (frozen, no gradient), scale, draw t
        and eps, predict eps from z_t, the noise level and the prompt; the loss is
        chapter 8's mean |eps - eps_hat|. {ld.PROMPT_DROPOUT:.0%} of the prompts are
        empty, so the same network learns eps(z_t, empty) for guidance. {steps} steps of
        AdamW; the EMA of the weights samples.""")
    log = LossLog()
    epochs = -(-steps * batch // len(images))  # as many passes as `steps` batches need
    count = -(-steps // epochs) * batch  # the images of each pass: steps / epochs batches
    cpu, began = time.process_time(), time.perf_counter()
    fit(model, optimizers, ld.diffusion_train_step, (images[:count], labels[:count]),
        epochs, batch, seed=args.seed + 1, device=args.device, on_step=log)
    seconds = time.perf_counter() - began
    cpu = time.process_time() - cpu
    curve = plot.plot_curves({"loss (mean |eps - eps_hat|)": plot.moving_average(log["loss"])},
                             out / "loss.png", xlabel=f"{len(log['loss'])} steps",
                             ylabel="mean absolute error")
    print(f"saved {curve}")
    print(f"{len(log['loss'])} steps in {seconds:.0f} s ({cpu:.0f} CPU-s, "
          f"{cpu / len(log['loss']) * 1000:.0f} ms per step); loss "
          f"{np.mean(log['loss'][:20]):.3f} (first 20) -> {np.mean(log['loss'][-100:]):.3f} "
          f"(last 100)")
    return {"loss": log["loss"], "seconds": seconds, "cpu_seconds": cpu}, curve


# %% 6. Cross-attention maps
def attention_maps(model: ld.LatentDiffusion, settings: dict, seed: int, out: Path
                   ) -> tuple[np.ndarray, Path]:
    """Where the 8x8 latent positions look in the prompt, averaged over heads and over
    the DDIM steps of one sample (at guidance 3)."""
    tokens = model.tokens([MAP_PROMPT])
    words = ["<start>"] + MAP_PROMPT.split()
    eps_model = model.eps_model(tokens, guidance=3.0)
    recorded: list = []
    network = model.ema_network
    device = device_of(model)

    def recording(z: mg.Tensor, v: mg.Tensor) -> mg.Tensor:
        maps: list = []
        network(z, v, tokens, attention_maps=maps)
        recorded.append(maps[0][1].numpy()[0].mean(0))  # the first (finest) layer: (HW, S)
        return eps_model(z, v)

    with evaluating(model), mg.no_grad():
        z0 = diffusion.ddim_sample(recording, (1, *ld.LATENT_SHAPE), settings["ddim_steps"],
                                   model.schedule, seed=seed, progress=False, device=device)
        image = model.decode(z0).clamp(0, 1).numpy()[0, 0]
    side = ld.LATENT_SHAPE[1] // 2 ** min(model.network.attention_levels)
    maps = np.mean(recorded, axis=0).T[:len(words)].reshape(len(words), side, side)
    fig = Figure(figsize=(2.2 * (len(words) + 1), 2.6))
    ax = fig.add_subplot(1, len(words) + 1, 1)
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"'{MAP_PROMPT}'")
    ax.axis("off")
    for i, (word, weights) in enumerate(zip(words, maps)):
        ax = fig.add_subplot(1, len(words) + 1, i + 2)
        ax.imshow(weights, cmap="magma", vmin=0, vmax=maps.max())
        ax.set_title(f"{word}: {weights.mean():.2f}")
        ax.axis("off")
    path = save_figure(fig, out / "cross_attention.png")
    explain(f"""
        The first cross-attention layer's weights ({side}x{side} positions, heads and the
        {settings['ddim_steps']} DDIM steps averaged) for each token of '{MAP_PROMPT}',
        beside the image it drew. Each position's weights sum to 1 over the tokens; the
        mean weight of each token is in its title. A token that carries the class (here
        'ankle', 'boot') should draw more weight than the article, and more where the
        garment is; <start> is the same for every prompt, so weight on it reads 'nothing
        prompt-specific here'.""")
    for word, weights in zip(words, maps):
        print(f"  {word:>8}: mean weight {weights.mean():.3f}, max {weights.max():.3f}")
    return maps, path


# %% 7. Samples for every class prompt at guidance 0, 1, 3 and 7
def samples_by_guidance(model: ld.LatentDiffusion, settings: dict, seed: int, out: Path
                        ) -> tuple[dict[float, np.ndarray], np.ndarray, list[Path]]:
    """per_class samples of each class prompt at each guidance weight, from the same
    starting noise at every weight; a grid per weight."""
    per_class = settings["per_class"]
    labels = np.repeat(np.arange(10), per_class)
    prompts = [ld.CLASS_PROMPTS[label] for label in labels]
    rng = np.random.default_rng(seed)
    z_T = rng.standard_normal((len(prompts), *ld.LATENT_SHAPE)).astype(np.float32)
    images, figures = {}, []
    for w in progress(GUIDANCE, "guidance weights"):
        batches = []
        for start in range(0, len(prompts), 100):
            batches.append(model.sample(
                prompts[start:start + 100], guidance=w, steps=settings["ddim_steps"],
                progress=False, z_T=mg.tensor(z_T[start:start + 100],
                                              device=device_of(model))).numpy())
        images[w] = np.concatenate(batches)
        shown = images[w].reshape(10, per_class, 1, 32, 32)[:, :10].reshape(-1, 1, 32, 32)
        figures.append(plot.image_grid(shown, out / f"guidance_{w:g}.png",
                                       nrow=min(per_class, 10),
                                       title=f"w = {w:g}: one row per class prompt"))
        print(f"saved {figures[-1]}")
    explain("""
        eps = eps(empty) + w (eps(prompt) - eps(empty)). Every grid starts from the same
        noise. w = 0 ignores the prompt (every row is the same mixture of garments), w = 1
        is the plain conditional model, w = 3 and 7 push further in the prompt's
        direction: the class is clearer and the images within a row more alike (and at
        7, harsher in contrast).""")
    return images, labels, figures


# %% 8. Conditional accuracy and the FID-style score against guidance
def fidelity_and_diversity(images: dict[float, np.ndarray], labels: np.ndarray,
                           test: np.ndarray, device: str, out: Path
                           ) -> tuple[dict, Path]:
    """The classifier's accuracy on the prompts' classes, and the FID-style score of the
    samples against test images, per guidance weight."""
    classifier = load_classifier("fashion_mnist", device=device)
    test_features = diffusion.classifier_features(classifier, test)
    n = len(labels)
    results = {"accuracy": {}, "fid": {},
               "fid_real": diffusion.frechet_distance(classifier, test[-n:],
                                                      diffusion.classifier_features(
                                                          classifier, test[:-n]))}
    for w, x in images.items():
        predicted = diffusion.predicted_classes(classifier, x)
        results["accuracy"][w] = float(np.mean(predicted == labels))
        results["fid"][w] = diffusion.frechet_distance(classifier, x, test_features)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(GUIDANCE, [results["accuracy"][w] for w in GUIDANCE], "o-C0")
    ax.set_xlabel("guidance weight w")
    ax.set_ylabel("conditional accuracy", color="C0")
    other = ax.twinx()
    other.plot(GUIDANCE, [results["fid"][w] for w in GUIDANCE], "s--C1")
    other.set_ylabel("FID-style score (lower is better)", color="C1")
    ax.grid(alpha=0.3)
    path = save_figure(fig, out / "guidance_tradeoff.png")
    explain(f"""
        The chapter-2 Fashion-MNIST classifier reads each of the {n} samples per weight:
        the conditional accuracy is how often it reads the prompt's class (chance 0.1).
        The FID-style score compares the classifier's features of the samples with those
        of test images; it is lowest where the samples are both good and as varied as
        the data. Guidance buys fidelity (accuracy) with diversity: past some w, the
        samples of a class crowd together and the score rises again.""")
    print(f"  {n} real test images against the other test images: FID-style "
          f"{results['fid_real']:.1f} (the floor)")
    for w in GUIDANCE:
        print(f"  w = {w:g}: accuracy {results['accuracy'][w]:.3f}, FID-style "
              f"{results['fid'][w]:.1f}")
    return results, path


# %% Run the lesson
def main(argv: list[str] | None = None) -> dict:
    args = lesson_parser(__doc__, full_help="4 times the training (about 40 minutes on "
                                            "a CPU)").parse_args(argv)
    out = start(LESSON, args)
    settings = SETTINGS["full" if args.full else "smoke" if args.smoke else "default"]
    began, cpu_began = time.perf_counter(), time.process_time()
    section("1. The data and the prompts")
    images, labels, test = load_data(settings)
    model = ld.make_latent_diffusion(settings["widths"], settings["attention_levels"],
                                     settings["embedding"], settings["prompt_dims"],
                                     settings["heads"]).to(args.device)
    section("2. The autoencoder")
    autoencoder, figures = train_autoencoder(model, images, test, settings, args, out)
    section("3. Why latent space")
    timing = why_latent(model, settings)
    section("4. The prompt encoder and the U-Net with cross-attention")
    counts = describe(model)
    section("5. Training the diffusion model in latent space")
    training, curve = train_diffusion(model, images, labels, settings, args, out)
    section("6. Cross-attention maps")
    maps, map_figure = attention_maps(model, settings, args.seed, out)
    section("7. Samples for every class prompt at guidance 0, 1, 3 and 7")
    samples, sample_labels, sample_figures = samples_by_guidance(model, settings, args.seed,
                                                                 out)
    section("8. Conditional accuracy and the FID-style score against guidance")
    scores, tradeoff = fidelity_and_diversity(samples, sample_labels, test, args.device, out)
    total, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    print(f"\nthe lesson took {total / 60:.1f} min ({cpu / 60:.1f} CPU-minutes)")
    figures += [curve, map_figure, *sample_figures, tradeoff]
    return {"autoencoder": autoencoder, "timing": timing, "parameters": counts,
            "training": training, "attention_maps": maps, "accuracy": scores["accuracy"],
            "fid": scores["fid"], "fid_real": scores["fid_real"], "total_seconds": total,
            "cpu_seconds": cpu, "figures": figures}


if __name__ == "__main__":
    main()
