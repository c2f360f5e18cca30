"""docs/torch_compat.md is made from the code by minigen/torch_table.py: it must be up to
date, every name it lists must exist (in minigen, and in PyTorch where it is installed),
every left-out name must say what to use, and the supported names must take PyTorch's
argument names in PyTorch's order."""
import inspect
import re
import types

import pytest

import minigen
from minigen import torch_table
from minigen.left_out import LEFT_OUT, LeftOut, LeftOutError


def test_the_committed_table_is_the_one_the_code_makes():
    committed = torch_table.DOC.read_text(encoding="utf-8")
    assert committed == torch_table.markdown(), (
        "docs/torch_compat.md is stale: run python -m minigen.torch_table --write")


@pytest.mark.parametrize("namespace", torch_table.SURFACE)
def test_every_listed_name_exists_in_minigen_and_is_no_stand_in(namespace):
    for name in torch_table.SURFACE[namespace]:
        found = torch_table.find(namespace, name)
        assert not isinstance(found, LeftOut), f"{namespace}.{name} is a stand-in"
    assert torch_table.rows(namespace)  # and the rows can be made


def test_the_counts_add_up():
    counts = torch_table.counts()
    for status in ("supported", "different", "left out"):
        assert counts["total"][status] == sum(c[status] for n, c in counts.items()
                                              if n != "total")
    assert counts["total"]["left out"] == sum(len(names) for names in LEFT_OUT.values())


def _real_names(namespace: str) -> set:
    """The names the namespace defines, stand-ins (which Tensor keeps on its class) aside."""
    owner = torch_table.OWNERS[namespace]
    if isinstance(owner, type):
        found = {name: value for klass in owner.__mro__ for name, value in vars(klass).items()}
    else:
        found = vars(owner)
    return {name for name, value in found.items() if not isinstance(value, LeftOut)}


@pytest.mark.parametrize("namespace", LEFT_OUT)
def test_a_left_out_name_imports_and_says_what_to_use_when_called(namespace):
    real = _real_names(namespace)
    for name, advice in LEFT_OUT[namespace].items():
        assert name not in real, f"{namespace}.{name} exists, so it is not left out"
        assert advice and not advice.endswith("."), f"{namespace}.{name}: advice {advice!r}"
        owner = torch_table.OWNERS[namespace]
        if namespace == "torch.Tensor":
            stand_in = getattr(minigen.ones(1), name)
        elif namespace == "torch.nn.Module":
            stand_in = getattr(minigen.nn.Identity(), name)
        else:
            stand_in = getattr(owner, name)
        assert isinstance(stand_in, LeftOut)
        message = f"{namespace}.{name} is left out of minigen on purpose: {advice}"
        with pytest.raises(LeftOutError, match=f"^{re.escape(message)}$"):
            stand_in(1, key=2)
        with pytest.raises(LeftOutError):
            stand_in.some_attribute  # noqa: B018 (torch.distributions.Normal, say)


def test_left_out_names_import_with_from():
    from minigen.optim.lr_scheduler import ReduceLROnPlateau

    from minigen.nn import GRU

    for stand_in in (GRU, ReduceLROnPlateau):
        with pytest.raises(LeftOutError, match="left out of minigen on purpose"):
            stand_in()


def test_a_name_neither_has_is_the_usual_attribute_error():
    with pytest.raises(AttributeError, match="module 'minigen' has no attribute 'spam'"):
        minigen.spam  # noqa: B018
    with pytest.raises(AttributeError, match="'Tensor' object has no attribute 'spam'"):
        minigen.ones(1).spam  # noqa: B018
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'spam'"):
        minigen.nn.Linear(1, 1).spam  # noqa: B018
    assert not hasattr(minigen.ones(1), "spam")


def test_a_difference_is_the_unlike_pytorch_paragraph_of_the_docstring():
    def documented():
        """What it does.

        Unlike PyTorch: it differs
        over two lines.

        More."""

    def plain():
        """What it does, as PyTorch does it."""

    assert torch_table.difference(documented) == "it differs over two lines."
    assert torch_table.difference(plain) is None
    assert torch_table.difference(property(documented)) == "it differs over two lines."
    assert torch_table.difference(minigen.float32) is None  # NumPy's own docstring
    assert torch_table.difference(minigen.pi) is None


# ---------------------------------------------------------------- against PyTorch


def _torch_namespace(torch, namespace: str):
    owner = torch
    for part in namespace.split(".")[1:]:
        owner = getattr(owner, part)
    return owner


def _torch_has(torch, namespace: str, name: str) -> bool:
    owner = _torch_namespace(torch, namespace)
    if hasattr(owner, name):
        return True
    if namespace == "torch.nn.Module":  # a plain attribute of each module (training)
        return hasattr(torch.nn.Identity(), name)
    return False


@pytest.mark.parametrize("namespace", torch_table.SURFACE)
def test_every_listed_and_left_out_name_is_pytorchs(namespace):
    torch = pytest.importorskip("torch")
    names = torch_table.SURFACE[namespace] + list(LEFT_OUT.get(namespace, {}))
    missing = [name for name in names if not _torch_has(torch, namespace, name)]
    assert not missing, f"not in PyTorch's {namespace}: {missing}"


def _parameters(function) -> list | None:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None  # a builtin without a signature
    return [p for p in signature.parameters.values() if p.name not in ("self", "cls")]


POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
ANY_ARGUMENTS = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


@pytest.mark.parametrize("namespace", torch_table.SURFACE)
def test_supported_names_take_pytorchs_arguments_in_pytorchs_order(namespace):
    """Where PyTorch's signature can be read: every positional parameter of minigen's is
    PyTorch's at the same place (the first may be named otherwise: minigen names its
    tensor x where PyTorch says input), and every keyword-only one is PyTorch's."""
    torch = pytest.importorskip("torch")
    problems = []
    for name, status, _ in torch_table.rows(namespace):
        if status != "supported":
            continue
        ours = torch_table.find(namespace, name)
        theirs = getattr(_torch_namespace(torch, namespace), name, None)
        if ours is None or isinstance(ours, (property, types.ModuleType)) or theirs is None:
            continue
        our_parameters, their_parameters = _parameters(ours), _parameters(theirs)
        if our_parameters is None or their_parameters is None or all(
                p.kind in ANY_ARGUMENTS for p in their_parameters):
            continue
        their_positional = [p.name for p in their_parameters if p.kind in POSITIONAL]
        their_names = {p.name for p in their_parameters}
        our_positional = [p.name for p in our_parameters if p.kind in POSITIONAL]
        for i, parameter in enumerate(our_positional):
            if i >= len(their_positional) or (i > 0 and parameter != their_positional[i]):
                problems.append(f"{namespace}.{name}: positional {i} is {parameter!r}, "
                                f"PyTorch's are {their_positional}")
        for p in our_parameters:
            if p.kind == inspect.Parameter.KEYWORD_ONLY and p.name not in their_names:
                problems.append(f"{namespace}.{name}: keyword {p.name!r} is not PyTorch's")
    assert not problems, "\n".join(problems)
