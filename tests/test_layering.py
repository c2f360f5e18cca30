"""Layers point one way: importing one model loads that model, not the command line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def loaded_after(statement: str) -> set[str]:
    """The minigen modules in sys.modules after `statement`, in a fresh interpreter."""
    code = (f"import sys\n{statement}\n"
            "print(' '.join(m for m in sys.modules if m.startswith('minigen')))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return set(run.stdout.split())


def test_importing_the_vae_loads_the_vae_and_its_autoencoder_pieces_only():
    loaded = loaded_after("import minigen.models.vae")
    assert {"minigen.models.vae", "minigen.models.autoencoder"} <= loaded
    others = {"minigen.models.dcgan", "minigen.models.wgan_gp", "minigen.models.cgan",
              "minigen.models.classifier", "minigen.models.gan_evaluation", "minigen.metrics",
              "minigen.train", "minigen.recipes"}
    assert not loaded & others, sorted(loaded & others)


def test_importing_the_models_package_loads_no_model():
    loaded = loaded_after("import minigen.models")
    assert not [name for name in loaded if name.startswith("minigen.models.")]
