"""PyTorch twins of the chapter 3 and 4 models, trained beside minigen at the lessons'
default settings, so that each published number stands beside what a correct
implementation of the same network and training reaches.

    python -m benchmarks.twins.autoencoder           # lesson 3a: test BCE
    python -m benchmarks.twins.autoencoder --full    # the book's 3 epochs
    python -m benchmarks.twins.vae                   # lesson 3b: negative ELBO
    python -m benchmarks.twins.dcgan                 # lesson 4a: FID-style
    python -m benchmarks.twins.wgan_gp               # lesson 4b: FID-style
    python -m benchmarks.twins.cgan                  # lesson 4c: FID-style, accuracy
    python -m benchmarks.twins.vae --seed 0 1 2      # three seeds: the run-to-run noise
    python -m benchmarks.twins.dcgan --steps 0       # the same-start checks only

Each twin has the same layers under the same names, so minigen's state dict loads into
it. Every run first checks, on a small batch, that both give the same outputs from the
same weights and that one training step from the same state leaves the same weights
(within 1e-4); for that step the twin takes its random numbers (noise z, eps, the
penalty's alpha, dropout masks, noisy labels) from minigen's generator by the same calls
in the same order, so both see the same draws. Then both train on the same batches in
minigen.train.fit's order, the twin with its own generator (torch.manual_seed), and the
same minigen code scores both: the twin's reconstructions or samples are converted to
arrays (the VAE's trained weights are loaded back into a minigen VAE, whose
negative_elbo needs the whole model).
"""
