"""The book's models, one file each: the network, its loss, training step and sampler, in
the book's order of explanation.

    classifier.py      chapter 2: a CNN classifier; its shipped weights read generated digits
    autoencoder.py     chapter 3: the autoencoder (its conv stack and decoder serve the VAE)
    vae.py             chapter 3: the VAE, the faces VAE, latent arithmetic, likelihood bounds
    dcgan.py           chapter 4: DCGAN (its generator serves the two GANs below)
    wgan_gp.py         chapter 4: WGAN-GP, the gradient penalty
    cgan.py            chapter 4: the conditional WGAN-GP
    gan_evaluation.py  chapter 4: the FID-style score, class histograms, conditional accuracy
    realnvp.py         chapter 6: RealNVP, a normalizing flow on two moons

Import the model you need, `from minigen.models import vae`: this package imports none
of them, so one model loads only what it uses. minigen.recipes tells the command line
how to train, evaluate and sample each.
"""
