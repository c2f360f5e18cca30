"""Overloads (minigen/signatures.py): a call picks the first form its arguments fit, and a
call that fits none is PyTorch's 'invalid combination of arguments' error, listing the forms.
torch.device and Tensor.to, which use them, are here too."""
import pickle

import numpy as np
import pytest

import minigen as mg
from minigen.signatures import Form, Overloads, argument_error

FORMS = Overloads("max", "Tensor input", "Tensor input, Tensor other",
                  "Tensor input, int dim, bool keepdim=False")


def test_a_call_binds_to_the_first_form_that_fits_with_defaults_filled_in():
    x, y = mg.ones(2), mg.zeros(2)
    assert FORMS.bind((x,), {}) == (0, {"input": x})
    assert FORMS.bind((x, y), {}) == (1, {"input": x, "other": y})
    assert FORMS.bind((x, 1), {}) == (2, {"input": x, "dim": 1, "keepdim": False})
    assert FORMS.bind((x,), {"dim": -1, "keepdim": True}) == (
        2, {"input": x, "dim": -1, "keepdim": True})


def test_a_call_that_fits_no_form_lists_every_form_as_pytorch_does():
    with pytest.raises(TypeError) as error:
        FORMS.bind((mg.ones(2), "a"), {})
    assert str(error.value) == (
        "max() received an invalid combination of arguments - got (Tensor, str), but "
        "expected one of:\n"
        " * (Tensor input)\n"
        " * (Tensor input, Tensor other)\n"
        " * (Tensor input, int dim, bool keepdim = False)")


def test_a_method_call_leaves_self_out_of_the_error():
    with pytest.raises(TypeError) as error:
        FORMS.bind((mg.ones(2), 1.5), {"keepdim": 1}, method=True)
    assert str(error.value).splitlines() == [
        "max() received an invalid combination of arguments - got (float, keepdim=int), "
        "but expected one of:", " * ()", " * (Tensor other)", " * (int dim, bool keepdim = False)"]


@pytest.mark.parametrize("args, kwargs", [
    ((), {}),                                   # input missing
    ((1, 2), {}),                               # not a tensor
    ((mg.ones(1), 1, True, 3), {}),             # too many
    ((mg.ones(1),), {"axis": 0}),               # an unknown keyword
    ((mg.ones(1), 0), {"dim": 0}),              # dim given twice
    ((mg.ones(1), True), {}),                   # a bool is not an int dim
    ((mg.ones(1), (0, 1)), {}),                 # nor is a tuple
])
def test_calls_that_fit_no_form(args, kwargs):
    with pytest.raises(TypeError, match="invalid combination of arguments"):
        FORMS.bind(args, kwargs)


def test_keyword_only_parameters_and_none_defaults():
    form = Form("Tensor input, Tensor ignored=None, *, dtype dtype=None")
    x = mg.ones(1)
    assert form.bind((x,), {}) == {"input": x, "ignored": None, "dtype": None}
    assert form.bind((x, None, mg.float64), {}) is None       # dtype is keyword-only
    assert form.bind((x,), {"dtype": mg.float64})["dtype"] == np.float64
    assert form.describe() == " * (Tensor input, Tensor ignored = None, *, dtype dtype = None)"


def test_an_unknown_kind_in_a_form_is_an_error_when_it_is_written():
    with pytest.raises(ValueError, match="unknown kind 'Tensr'"):
        Form("Tensr input")


def test_the_one_argument_error():
    assert str(argument_error("zeros", "size", 1, "tuple of ints", "a")) == (
        "zeros(): argument 'size' (position 1) must be tuple of ints, not str")


# ---------------------------------------------------------------- torch.max and torch.min


def test_max_and_min_in_their_three_forms():
    x, y = mg.tensor([1.0, 5.0, 3.0]), mg.tensor([2.0, 2.0, 4.0])
    assert mg.max(x).item() == 5.0 and mg.min(x).item() == 1.0
    np.testing.assert_array_equal(mg.max(x, y).numpy(), [2.0, 5.0, 4.0])
    np.testing.assert_array_equal(x.min(y).numpy(), [1.0, 2.0, 3.0])
    values, indices = mg.max(x, 0)
    assert (values.item(), indices.item()) == (5.0, 1)
    assert x.min(dim=0, keepdim=True).indices.shape == (1,)


def test_max_of_a_tensor_and_a_string_is_the_overload_error_not_numpys():
    with pytest.raises(TypeError, match=r"max\(\) received an invalid combination"):
        mg.max(mg.ones(2), "1")
    with pytest.raises(TypeError, match=r"(?s)got \(str\).*\* \(Tensor other\)"):
        mg.ones(2).max("1")


# ---------------------------------------------------------------- torch.device, Tensor.to


def test_device_as_pytorch_writes_it():
    d = mg.device("cuda", 0)
    assert (d.type, d.index, str(d), repr(d)) == ("cuda", 0, "cuda:0",
                                                  "device(type='cuda', index=0)")
    assert mg.device("cuda:1") == mg.device("cuda", 1)
    assert mg.device(mg.device("cpu")) == "cpu"
    assert repr(mg.device("cpu")) == "device(type='cpu')"
    assert pickle.loads(pickle.dumps(d)) == d and pickle.loads(pickle.dumps(d)).index == 0


@pytest.mark.parametrize("name, message", [
    ("tpu", "Expected one of cpu, cuda device type"), ("cuda:x", "Invalid device string"),
    ("cuda:-1", "Invalid device string")])
def test_a_bad_device_string_says_so(name, message):
    with pytest.raises(RuntimeError, match=message):
        mg.device(name)
    with pytest.raises(RuntimeError, match="given twice"):
        mg.device("cuda:0", 0)


def test_a_tensor_reports_a_device_that_still_equals_its_name():
    x = mg.ones(2)
    assert x.device == "cpu" and x.device.type == "cpu" and isinstance(x.device, mg.device)
    assert mg.ones(2, device=mg.device("cpu")).device == "cpu"


def test_to_in_its_three_forms():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    assert x.to(mg.float64).dtype == np.float64
    assert x.to("cpu") is x and x.to(mg.device("cpu"), mg.float32) is x
    assert x.to(mg.tensor([1], dtype=mg.int64)).dtype == np.int64
    assert x.to(device="cpu", dtype=mg.float64).dtype == np.float64
    copy = x.to(copy=True)
    assert copy is not x and copy.data is not x.data and copy.requires_grad
    with pytest.raises(TypeError, match=r"to\(\) received an invalid combination"):
        x.to(3.5)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        x.to("tpu")
