"""minigen.models.gan_evaluation: the shipped MNIST classifier reads real test digits as a
perfect generator's, so the scores have a known answer there."""
from __future__ import annotations

import numpy as np
import pytest

from minigen.datasets import load_mnist
from minigen.models import cgan, gan_evaluation
from minigen.models.classifier import load_classifier
from minigen.models.dcgan import to_gan_input

N = 400  # test digits: enough for a stable histogram, quick on a CPU


@pytest.fixture(scope="module")
def digits():
    """The MNIST classifier, N test digits as a GAN makes them, and their labels."""
    images, labels = load_mnist("test")
    return load_classifier("mnist"), to_gan_input(images[:N]), labels[:N]


def test_real_digits_are_read_as_their_labels(digits):
    classifier, images, labels = digits
    predicted = gan_evaluation.class_predictions(classifier, images)
    assert predicted.shape == (N,) and (predicted == labels).mean() > 0.95
    fractions = gan_evaluation.class_fractions(classifier, images)
    assert fractions.shape == (10,) and fractions.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(fractions, np.bincount(labels, minlength=10) / N, atol=0.02)


def test_the_fid_style_score_of_the_test_digits_themselves_is_zero(digits):
    classifier, images, _ = digits
    features = gan_evaluation.classifier_features(classifier, images)
    assert features.shape == (N, 128)
    assert gan_evaluation.frechet_distance(classifier, images, features) == pytest.approx(
        0.0, abs=1e-3)
    floor = gan_evaluation.real_digits_score(classifier, features, N)  # other real digits
    noise = np.random.default_rng(0).uniform(-1, 1, images.shape).astype(np.float32)
    assert 0 < floor < gan_evaluation.frechet_distance(classifier, noise, features) / 10


def test_conditional_accuracy_is_a_fraction_per_class(digits):
    classifier, _, _ = digits
    model = cgan.ConditionalGAN(width=4)
    accuracy = gan_evaluation.conditional_accuracy(classifier, model.generator, 3)
    assert accuracy.shape == (10,) and ((0 <= accuracy) & (accuracy <= 1)).all()
    assert np.allclose(accuracy * 3, np.round(accuracy * 3))  # counts out of 3 per class
    assert model.generator.training  # sampled in eval mode, then restored
