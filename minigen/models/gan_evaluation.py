"""Chapter 4's evaluation of generated digits, for all of its GANs: the chapter 2 MNIST
classifier reads them.

    classifier = load_classifier("mnist")
    test_features = classifier_features(classifier, to_gan_input(test_images))
    score = frechet_distance(classifier, sample(model.generator, 5000), test_features)
    floor = real_digits_score(classifier, test_features, 5000)  # what real digits score
    fractions = class_fractions(classifier, images)              # mode collapse shows here
    accuracy = conditional_accuracy(classifier, model.generator, 500)  # conditional GAN

The FID-style score is the Frechet distance (metrics.fid) between Gaussians fitted to
the classifier's 128-d features of generated and of test images: FID's recipe, with
the MNIST classifier in place of Inception. The class histogram of generated digits
shows mode collapse; for the conditional GAN, the classifier checks that each label
gives its digit. All images here are GAN images: (N, 1, 32, 32) in [-1, 1].
"""
from __future__ import annotations

import numpy as np

from minigen import metrics
from minigen.autograd import Tensor
from minigen.datasets import load_mnist
from minigen.models import cgan
from minigen.models.classifier import Classifier, extract_features, to_classifier_input
from minigen.models.dcgan import to_gan_input
from minigen.nn import device_of
from minigen.train import apply_in_batches

# ---------------------------------------------------------------- the FID-style score


def classifier_features(classifier: Classifier, images: Tensor | np.ndarray) -> Tensor:
    """The chapter 2 classifier's 128-d features of images (N, 1, 32, 32) in [-1, 1]."""
    return extract_features(classifier, images, value_range=(-1.0, 1.0))


def frechet_distance(classifier: Classifier, generated: Tensor | np.ndarray,
                     real_features: Tensor) -> float:
    """The FID-style score of generated images (N, 1, 32, 32) in [-1, 1]: the Frechet
    distance between Gaussians fitted to their classifier features and to real_features
    (M, 128), e.g. those of the test images. 0 for identical statistics; lower is better."""
    return metrics.fid(classifier_features(classifier, generated), real_features)


def real_digits_score(classifier: Classifier, real_features: Tensor, n: int) -> float:
    """The FID-style score of n real digits the networks never see (the last training
    images): what a perfect generator would score with n samples; a finite sample never
    scores 0, so this is the floor to compare a generator's score with."""
    real_digits = to_gan_input(load_mnist("train")[0][-n:])
    return frechet_distance(classifier, real_digits, real_features)


# ---------------------------------------------------------------- which digits


def class_predictions(classifier: Classifier, images: Tensor | np.ndarray) -> np.ndarray:
    """The class the classifier reads in each image (N, 1, 32, 32) in [-1, 1]: (N,) ints."""
    logits = apply_in_batches(classifier, images, 500, device_of(classifier),
                              to_classifier_input)
    return logits.numpy().argmax(axis=1)


def class_fractions(classifier: Classifier, images: Tensor | np.ndarray) -> np.ndarray:
    """The fraction of images (N, 1, 32, 32) in [-1, 1] that the classifier puts in each
    class, (num_classes,). About 0.1 each for MNIST's test set; a generator that has
    collapsed onto a few modes makes a few classes far more often than the others."""
    predicted = class_predictions(classifier, images)
    return np.bincount(predicted, minlength=classifier.head.out_features) / len(predicted)


# ---------------------------------------------------------------- the conditional GAN


def conditional_accuracy(classifier: Classifier, generator: cgan.ConditionalGenerator,
                         per_class: int) -> np.ndarray:
    """For each class k, the fraction of per_class images generated with label k that the
    classifier reads as k: (num_classes,). Chance is 1 / num_classes."""
    labels = cgan.class_rows(generator.num_classes, per_class, device_of(generator))
    predicted = class_predictions(classifier, cgan.sample(generator, labels))
    correct = predicted == labels.numpy()
    return correct.reshape(generator.num_classes, per_class).mean(axis=1)


__all__ = ["class_fractions", "class_predictions", "classifier_features",
           "conditional_accuracy", "frechet_distance", "real_digits_score"]
