"""The table of PyTorch's surface in minigen: supported, different, left out.

    python -m minigen.torch_table            # print the table
    python -m minigen.torch_table --write    # write docs/torch_compat.md

The table is made from the code, so it cannot drift from it:

- SURFACE below lists the PyTorch names minigen covers, namespace by namespace; each
  must exist in minigen (tests/test_torch_table.py checks, and, with PyTorch installed,
  that each exists in PyTorch too);
- a name is *different* when its docstring has a paragraph that begins "Unlike PyTorch:"
  (which the table quotes), or, for a plain attribute without a docstring of its own,
  when NOTES below says how it differs; otherwise it is *supported*;
- a name is *left out* when minigen/left_out.py lists it, with what to use instead.

tests/test_torch_table.py fails when docs/torch_compat.md is not what this writes.
"""
from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Any

import minigen
import minigen.nn.functional
from minigen import left_out

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "torch_compat.md"

SURFACE: dict[str, list[str]] = {
    "torch": """
        tensor as_tensor from_numpy zeros ones full empty zeros_like ones_like full_like
        empty_like rand randn rand_like randn_like randint randperm normal bernoulli
        multinomial arange linspace eye manual_seed
        abs add sub mul div neg pow exp expm1 log log1p log2 log10 sqrt rsqrt reciprocal
        square sin cos tanh atanh sigmoid relu erf clamp clip floor ceil round trunc sign
        lerp maximum minimum where masked_fill nonzero
        lt le gt ge eq ne equal allclose isclose isnan isinf isfinite logical_and
        logical_or logical_xor logical_not
        sum mean std var max min amax amin argmax argmin logsumexp cumsum all any norm
        softmax log_softmax sort argsort topk
        matmul mm bmm dot outer
        cat concat concatenate stack split chunk reshape flatten squeeze unsqueeze permute
        transpose broadcast_to gather index_select masked_select narrow unbind flip roll
        tril triu meshgrid clone
        no_grad enable_grad set_grad_enabled inference_mode is_grad_enabled
        Tensor is_tensor is_floating_point numel get_default_dtype set_default_dtype
        device cuda backends autograd nn optim utils save load
        dtype float16 half float32 float float64 double int8 int16 int32 int int64 long
        uint8 bool finfo iinfo Size pi e inf nan
    """.split(),
    "torch.Tensor": """
        shape dtype device ndim T mT data grad requires_grad is_leaf grad_fn is_cuda
        size dim numel nelement element_size item tolist numpy
        to cpu cuda float double half int long bool type_as is_floating_point
        detach clone contiguous requires_grad_ backward retain_grad
        new_tensor new_zeros new_ones new_full new_empty
        add sub mul div neg pow exp expm1 log log1p log2 log10 sqrt rsqrt reciprocal square
        abs sign floor ceil round trunc sin cos tanh atanh sigmoid relu erf clamp clip maximum
        minimum lerp where masked_fill nonzero matmul mm bmm dot outer
        lt le gt ge eq ne equal allclose isclose isnan isinf isfinite logical_and
        logical_or logical_xor logical_not
        sum mean std var max min amax amin argmax argmin logsumexp softmax log_softmax
        cumsum norm all any sort argsort topk
        reshape reshape_as view view_as transpose t permute expand expand_as repeat squeeze
        unsqueeze flatten split chunk unbind narrow gather index_select masked_select flip
        roll tril triu
        zero_ fill_ copy_ add_ sub_ mul_ div_ pow_ clamp_ clip_ neg_ abs_ exp_ log_ sqrt_
        sigmoid_ tanh_ relu_ masked_fill_ uniform_ normal_ scatter_
    """.split(),
    "torch.nn": """
        Module Parameter Sequential ModuleList ModuleDict Linear Identity Flatten Unflatten
        Conv2d ConvTranspose2d MaxPool2d AvgPool2d Upsample BatchNorm1d BatchNorm2d
        LayerNorm GroupNorm Dropout Embedding MultiheadAttention LSTM LSTMCell ReLU LeakyReLU
        ELU GELU
        SiLU Sigmoid Tanh Softplus Softmax LogSoftmax MSELoss L1Loss BCELoss
        BCEWithLogitsLoss CrossEntropyLoss NLLLoss KLDivLoss functional init utils
    """.split(),
    "torch.nn.Module": """
        forward parameters named_parameters buffers named_buffers children named_children
        modules named_modules register_buffer register_parameter add_module apply train
        eval training requires_grad_ zero_grad to cpu cuda float double half state_dict
        load_state_dict extra_repr
    """.split(),
    "torch.nn.functional": """
        relu leaky_relu elu gelu silu sigmoid tanh softplus softmax log_softmax logsigmoid
        linear one_hot normalize pad conv2d conv_transpose2d max_pool2d avg_pool2d
        interpolate batch_norm layer_norm group_norm dropout embedding
        scaled_dot_product_attention mse_loss l1_loss binary_cross_entropy
        binary_cross_entropy_with_logits cross_entropy nll_loss kl_div
    """.split(),
    "torch.nn.init": """
        calculate_gain uniform_ normal_ constant_ zeros_ ones_ eye_ xavier_uniform_
        xavier_normal_ kaiming_uniform_ kaiming_normal_
    """.split(),
    "torch.nn.utils": """
        clip_grad_norm_ clip_grad_value_ parameters_to_vector vector_to_parameters
    """.split(),
    "torch.optim": "Optimizer SGD Adam AdamW lr_scheduler".split(),
    "torch.optim.lr_scheduler": """
        LRScheduler StepLR MultiStepLR ExponentialLR LambdaLR CosineAnnealingLR
    """.split(),
    "torch.utils.data": "Dataset TensorDataset Subset DataLoader random_split "
                        "default_collate".split(),
    "torch.cuda": "is_available device_count manual_seed manual_seed_all synchronize "
                  "empty_cache".split(),
    "torch.autograd": "grad backward Function".split(),
    "torch.backends": "cudnn mps".split(),
}

# how plain attributes, which have no docstring of their own, differ from PyTorch's
NOTES: dict[str, str] = {
    "torch.Tensor.data": ("the NumPy or CuPy array itself, not a tensor: p.data -= lr * "
                          "p.grad.data works, p.data.zero_() does not (write p.zero_() "
                          "under no_grad())"),
    "torch.dtype": ("NumPy's np.dtype: minigen.float32 is np.dtype('float32'), so "
                    "x.dtype == minigen.float32 and x.dtype == np.float32 both hold"),
    "torch.finfo": "NumPy's np.finfo (eps, max, min, tiny)",
    "torch.iinfo": "NumPy's np.iinfo",
    "torch.Size": "a plain tuple: x.size() and x.shape are tuples",
}

# namespace -> the minigen object that holds its names
OWNERS: dict[str, Any] = {
    "torch": minigen,
    "torch.Tensor": minigen.Tensor,
    "torch.nn": minigen.nn,
    "torch.nn.Module": minigen.nn.Module,
    "torch.nn.functional": minigen.nn.functional,
    "torch.nn.init": minigen.nn.init,
    "torch.nn.utils": minigen.nn.utils,
    "torch.optim": minigen.optim,
    "torch.optim.lr_scheduler": minigen.optim.lr_scheduler,
    "torch.utils.data": minigen.utils.data,
    "torch.cuda": minigen.cuda,
    "torch.autograd": minigen.autograd,
    "torch.backends": minigen.backends,
}

SUPPORTED, DIFFERENT, LEFT_OUT = "supported", "different", "left out"
MARKER = "Unlike PyTorch:"


def find(namespace: str, name: str) -> Any:
    """The minigen object for namespace.name: for a class (Tensor, Module), the function
    or property itself, not its value; None for a plain attribute set on each object
    (a tensor's .data, a module's .training). AttributeError if minigen has no such name."""
    owner = OWNERS[namespace]
    if not isinstance(owner, type):
        return getattr(owner, name)
    for klass in owner.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    example = minigen.ones(1) if owner is minigen.Tensor else owner()
    if name in vars(example):
        return None
    raise AttributeError(f"{owner.__name__} has no attribute {name!r}")


def difference(obj: Any) -> str | None:
    """The text of the 'Unlike PyTorch:' paragraph of obj's own docstring, or None."""
    if obj is None:
        return None
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    doc = obj.__doc__ if isinstance(obj, property) else _own_doc(obj)
    if not doc:
        return None
    doc = inspect.cleandoc(doc)
    for paragraph in doc.split("\n\n"):
        text = " ".join(paragraph.split())
        if MARKER in text:
            return text[text.index(MARKER) + len(MARKER):].strip()
    return None


def _own_doc(obj: Any) -> str | None:
    """obj's docstring, but not one it only inherits (an instance's class's, a module
    object's type's), so that a plain value never borrows its type's notes."""
    if inspect.isroutine(obj) or inspect.isclass(obj) or inspect.ismodule(obj):
        return obj.__doc__
    if isinstance(getattr(obj, "__doc__", None), str) and type(obj).__doc__ != obj.__doc__:
        return obj.__doc__
    if type(obj).__module__.startswith("minigen"):
        return type(obj).__doc__  # an object made by minigen (backends.cudnn) speaks for
    return None                    # its class


def rows(namespace: str) -> list[tuple[str, str, str]]:
    """(name, status, note) for every name of a namespace, in SURFACE's order, then the
    left-out names. Raises AttributeError for a SURFACE name minigen does not have."""
    table = []
    for name in SURFACE[namespace]:
        if name in left_out.LEFT_OUT.get(namespace, {}):
            raise ValueError(f"{namespace}.{name} is both in SURFACE and left out")
        note = NOTES.get(f"{namespace}.{name}") or difference(find(namespace, name))
        table.append((name, DIFFERENT if note else SUPPORTED, note or ""))
    for name, advice in left_out.LEFT_OUT.get(namespace, {}).items():
        table.append((name, LEFT_OUT, advice))
    return table


def counts() -> dict[str, dict[str, int]]:
    """{namespace: {status: count}}, and 'total'."""
    result = {}
    for namespace in SURFACE:
        statuses = [status for _, status, _ in rows(namespace)]
        result[namespace] = {s: statuses.count(s) for s in (SUPPORTED, DIFFERENT, LEFT_OUT)}
    result["total"] = {s: sum(c[s] for c in result.values()) for s in
                       (SUPPORTED, DIFFERENT, LEFT_OUT)}
    return result


INTRODUCTION = """\
# minigen for PyTorch users

minigen's names, argument orders and weight layouts follow PyTorch's, so code written for
PyTorch runs with `import minigen as torch` in place of `import torch`. This page lists
the part of PyTorch's surface that introductory and generative-model code uses, and for each
name whether minigen **supports** it (PyTorch's name, arguments and forms), has it but
**different** in a way the note says, or **leaves it out** on purpose. A left-out name
still imports; calling it raises `LeftOutError`, which says what to use instead.

Generated by `python -m minigen.torch_table --write` from the code (the docstrings'
"Unlike PyTorch:" paragraphs and `minigen/left_out.py`); `tests/test_torch_table.py`
fails when this page is stale. `tests/test_torch_compat.py` runs tutorial-style snippets
in minigen and, where PyTorch is installed, in PyTorch, and compares the results;
`python -m examples.compare` trains three tutorial scripts in both, side by side.

What differs everywhere:

- A tensor's `.data` is its NumPy or CuPy array, and dtypes are NumPy's
  (`minigen.float32 == np.float32`). `tensor.numpy()` and `np.asarray(tensor)` work.
- Random draws follow the same distributions but not PyTorch's streams: one seed gives
  other numbers than in PyTorch (`examples/` copies weights and data across to compare).
- In-place ops (`x.add_(y)`, `x += y`, `x[i] = v`) write into the tensor's array under
  PyTorch's rules (a leaf that requires grad only under `no_grad()`), but minigen does not
  record them in the graph: while grad mode is on, `y += x` on a tensor that requires grad
  is `y = y + x`, and `y.add_(x)` is an error that says so.
- Arguments are named as in PyTorch, except that minigen's elementwise functions name
  their tensor `x` where PyTorch says `input`: pass it by position.
- Overloaded functions (`max`, `min`, `clamp`, `normal`, `randint`, `Tensor.to`) take
  PyTorch's forms, and a call that fits none is PyTorch's "received an invalid combination
  of arguments" error, listing the forms.
"""


def markdown() -> str:
    """The whole of docs/torch_compat.md."""
    all_counts = counts()
    lines = [INTRODUCTION, "## Counts", "",
             "| namespace | supported | different | left out |", "| --- | --- | --- | --- |"]
    for namespace, c in all_counts.items():
        label = "**total**" if namespace == "total" else f"`{namespace}`"
        lines.append(f"| {label} | {c[SUPPORTED]} | {c[DIFFERENT]} | {c[LEFT_OUT]} |")
    for namespace in SURFACE:
        lines += ["", f"## `{namespace}`", "", "| name | status | note |",
                  "| --- | --- | --- |"]
        for name, status, note in rows(namespace):
            lines.append(f"| `{name}` | {status} | {note.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minigen.torch_table",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    text = markdown()
    if args.write:
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(text, encoding="utf-8")
        total = counts()["total"]
        print(f"wrote {DOC.relative_to(ROOT)}: {total[SUPPORTED]} supported, "
              f"{total[DIFFERENT]} different, {total[LEFT_OUT]} left out")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
