"""Chapter 13's latent diffusion: the time of one training step of the same
prompt-conditioned U-Net on 1x32x32 pixels and on 4x8x8 latents, at the same batch.

    python -m benchmarks.latent_diffusion              # medians of 5 steps, batch 64
    python -m benchmarks.latent_diffusion --repeats 20 --batch-size 128

A step is the forward pass, the loss (mean |eps - eps_hat|), the backward pass and an
AdamW step; the network is minigen.models.latent_diffusion's default (widths 32, 64, 96,
cross-attention at the two finest levels), once with 1 input channel at 32x32 and once
with 4 at 8x8. The conditional accuracy and the FID-style score per guidance weight
come from lessons/ch13_latent_diffusion.py's default run (lessons/README.md). On a
shared machine the times are noisy: run it alone for figures to trust.
"""
from __future__ import annotations

import argparse

import numpy as np

import minigen as mg
from benchmarks.conv import blas_threads, median_ms
from minigen.models import latent_diffusion as ld
from minigen.optim import AdamW


def step_ms(channels: int, size: int, batch: int, repeats: int) -> float:
    """The median time of one training step, in milliseconds."""
    mg.manual_seed(0)
    tokenizer = ld.make_tokenizer()
    network = ld.TextConditionedUNet(len(tokenizer), tokenizer.context_length, channels)
    optimizer = AdamW(network.parameters(), lr=1e-4)
    tokens = mg.tensor(tokenizer.encode([ld.CLASS_PROMPTS[i % 10] for i in range(batch)]))
    x, v = mg.randn(batch, channels, size, size), mg.rand(batch, 1, 1, 1)

    def step() -> None:
        loss = (network(x, v, tokens) - x).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()

    return median_ms(step, repeats, warmup=1)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=ld.BATCH_SIZE)
    args = parser.parse_args(argv)
    results = {"pixels 1x32x32": step_ms(1, 32, args.batch_size, args.repeats),
               "latents 4x8x8": step_ms(4, 8, args.batch_size, args.repeats)}
    print(f"one training step, batch {args.batch_size}, {blas_threads()} BLAS thread(s):")
    for name, ms in results.items():
        print(f"  {name:>15}: {ms:8.1f} ms")
    ratio = results["pixels 1x32x32"] / results["latents 4x8x8"]
    print(f"  pixels / latents: {ratio:.1f}x")
    results["ratio"] = float(np.round(ratio, 2))
    return results


if __name__ == "__main__":
    main()
