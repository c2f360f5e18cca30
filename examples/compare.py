"""Train each example script on minigen and on PyTorch, from the same weights and data,
and print their losses side by side.

    python -m examples.compare                 # 20 steps of each script
    python -m examples.compare --steps 50 mlp_classifier

Each script is run twice from its own source: as written (`import minigen as torch`)
and with that one line changed to `import torch`, which is checked to be the only
difference. Both versions build their networks with their own library's initialisation;
the PyTorch one then takes the minigen one's weights (load_state_dict), so both start
from the same point, and both train on the same NumPy arrays, in the same order.
"""
from __future__ import annotations

import argparse
import types
from pathlib import Path

import numpy as np

from examples.data import fashion_mnist

HERE = Path(__file__).resolve().parent
SCRIPTS = ["mlp_classifier", "conv_autoencoder", "gan"]
OURS, THEIRS = "import minigen as torch", "import torch"
EXAMPLES_PER_STEP = {"mlp_classifier": 64, "conv_autoencoder": 32, "gan": 64}


def load(name: str, library: str) -> types.ModuleType:
    """The script `name` as a module, for 'minigen' (as written) or 'torch' (its import
    line changed, and only that)."""
    source = (HERE / f"{name}.py").read_text(encoding="utf-8")
    lines = source.splitlines()
    if lines.count(OURS) != 1:
        raise ValueError(f"examples/{name}.py must have the line {OURS!r} exactly once")
    if library == "torch":
        source = "\n".join(THEIRS if line == OURS else line for line in lines) + "\n"
    module = types.ModuleType(f"examples.{name}_{library}")
    module.__file__ = str(HERE / f"{name}.py")
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def copy_weights(source: dict, target: dict) -> None:
    """Give each PyTorch module the weights (and buffers) of its minigen twin."""
    import torch

    for name, module in target.items():
        state = {key: torch.from_numpy(np.array(value.numpy()))
                 for key, value in source[name].state_dict().items()}
        module.load_state_dict(state)


def run(name: str, steps: int, with_torch: bool = True) -> dict[str, list]:
    """{'minigen': losses, 'torch': losses} of `steps` training steps of script `name`."""
    data = fashion_mnist(steps * EXAMPLES_PER_STEP[name])
    ours = load(name, "minigen")
    import minigen

    minigen.manual_seed(0)
    models = ours.make_models()
    results = {}
    if with_torch:
        import torch

        torch.manual_seed(0)
        theirs = load(name, "torch")
        their_models = theirs.make_models()
        copy_weights(models, their_models)
        results["torch"] = theirs.train(their_models, data, steps)
    results["minigen"] = ours.train(models, data, steps)
    return results


def _as_text(loss) -> str:
    if isinstance(loss, tuple):
        return " / ".join(f"{v:.6f}" for v in loss)
    return f"{loss:.6f}"


def report(name: str, results: dict, every: int) -> str:
    lines = [f"{name}: loss per step" + (" (discriminator / generator)" if name == "gan"
                                          else "")]
    has_torch = "torch" in results
    lines.append(f"  {'step':>4}  {'minigen':>22}  " + (f"{'torch':>22}  difference"
                                                      if has_torch else ""))
    for step, ours in enumerate(results["minigen"], start=1):
        if step % every and step != len(results["minigen"]):
            continue
        row = f"  {step:>4}  {_as_text(ours):>22}"
        if has_torch:
            theirs = results["torch"][step - 1]
            gap = np.max(np.abs(np.subtract(ours, theirs)))
            row += f"  {_as_text(theirs):>22}  {gap:.1e}"
        lines.append(row)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m examples.compare",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("scripts", nargs="*", metavar="script",
                        help=f"of {', '.join(SCRIPTS)} (default: all)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--every", type=int, default=5, help="print every Nth step")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.scripts) - set(SCRIPTS))
    if unknown:
        parser.error(f"unknown scripts {unknown}; choose from {SCRIPTS}")
    try:
        import torch  # noqa: F401
        with_torch = True
    except ImportError:
        print("PyTorch is not installed: minigen only (pip install torch to compare)")
        with_torch = False
    all_results = {}
    for name in args.scripts or SCRIPTS:
        all_results[name] = run(name, args.steps, with_torch)
        print(report(name, all_results[name], args.every))
    return all_results


if __name__ == "__main__":
    main()
