"""Attention: scaled_dot_product_attention against a NumPy softmax(Q K^T / sqrt(d)) V,
its gradients, and MultiheadAttention against a computation by hand from its parameters."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigen
from minigen import nn
from minigen.gradcheck import gradcheck, gradgradcheck
from minigen.nn import functional as F
from minigen.nn.attention import attention


def np_softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def np_attention(q, k, v, additive_mask=None, scale=None):
    """softmax(Q K^T * scale + mask) V in plain NumPy."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ np.swapaxes(k, -1, -2) * scale
    if additive_mask is not None:
        scores = scores + additive_mask
    weights = np_softmax(scores)
    return weights @ v, weights


def t(array, device, requires_grad=False):
    return minigen.tensor(array, device=device, requires_grad=requires_grad)


@pytest.fixture
def qkv():
    rng = np.random.default_rng(1)
    return (rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 6, 4)),
            rng.standard_normal((2, 3, 6, 7)))


# ---------------------------------------------------------------- scaled_dot_product_attention


def test_sdpa_matches_numpy(device, qkv):
    q, k, v = qkv
    out = F.scaled_dot_product_attention(t(q, device), t(k, device), t(v, device))
    expected, _ = np_attention(q, k, v)
    assert out.shape == (2, 3, 5, 7)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_sdpa_float32(device, qkv):
    q, k, v = (a.astype(np.float32) for a in qkv)
    out = F.scaled_dot_product_attention(t(q, device), t(k, device), t(v, device))
    expected, _ = np_attention(*(a.astype(np.float64) for a in (q, k, v)))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_sdpa_causal_matches_numpy(device, qkv):
    q, k, v = qkv
    k, v = k[..., :5, :], v[..., :5, :]
    out = F.scaled_dot_product_attention(t(q, device), t(k, device), t(v, device),
                                         is_causal=True)
    mask = np.where(np.tril(np.ones((5, 5), dtype=bool)), 0.0, -np.inf)
    expected, weights = np_attention(q, k, v, mask)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    # PyTorch's argument order: (query, key, value, attn_mask, dropout_p, is_causal, scale)
    positional = F.scaled_dot_product_attention(t(q, device), t(k, device), t(v, device), None,
                                                0.0, True)
    np.testing.assert_array_equal(positional.numpy(), out.numpy())
    # query 0 sees only key 0, so its output is value 0
    np.testing.assert_allclose(out.numpy()[..., 0, :], v[..., 0, :], rtol=1e-12)
    assert np.all(np.triu(weights[0, 0], 1) == 0)


def test_sdpa_causal_is_top_left_aligned_for_unequal_lengths(device, qkv):
    q, k, v = qkv  # L = 5 queries, S = 6 keys: query i sees keys 0..i, as in PyTorch
    out = F.scaled_dot_product_attention(t(q, device), t(k, device), t(v, device),
                                         is_causal=True)
    mask = np.where(np.tril(np.ones((5, 6), dtype=bool)), 0.0, -np.inf)
    expected, _ = np_attention(q, k, v, mask)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_sdpa_output_does_not_depend_on_future_keys(device, qkv):
    q, k, v = qkv
    k, v = k[..., :5, :], v[..., :5, :]
    changed_k, changed_v = k.copy(), v.copy()
    changed_k[..., 3:, :] += 10.0
    changed_v[..., 3:, :] -= 10.0
    before = F.scaled_dot_product_attention(t(q, device), t(k, device), t(v, device),
                                            is_causal=True).numpy()
    after = F.scaled_dot_product_attention(t(q, device), t(changed_k, device),
                                           t(changed_v, device), is_causal=True).numpy()
    np.testing.assert_array_equal(before[..., :3, :], after[..., :3, :])
    assert not np.allclose(before[..., 3:, :], after[..., 3:, :])


def test_sdpa_boolean_mask_true_takes_part(device, qkv):
    q, k, v = qkv
    rng = np.random.default_rng(2)
    keep = rng.random((5, 6)) < 0.5
    keep[:, 0] = True  # every query keeps at least one key
    out = F.scaled_dot_product_attention(t(q, device), t(k, device), t(v, device),
                                         attn_mask=t(keep, device))
    expected, _ = np_attention(q, k, v, np.where(keep, 0.0, -np.inf))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_sdpa_boolean_mask_broadcasts_over_batch(device, qkv):
    q, k, v = qkv
    rng = np.random.default_rng(3)
    keep = rng.random((2, 1, 5, 6)) < 0.5  # one mask per batch element, shared by heads
    keep[..., 0] = True
    out = F.scaled_dot_product_attention(t(q, device), t(k, device), t(v, device),
                                         attn_mask=keep)
    expected, _ = np_attention(q, k, v, np.where(keep, 0.0, -np.inf))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_sdpa_float_mask_is_added(device, qkv):
    q, k, v = qkv
    bias = np.random.default_rng(4).standard_normal((5, 6))
    out = F.scaled_dot_product_attention(t(q, device), t(k, device), t(v, device),
                                         attn_mask=t(bias, device))
    expected, _ = np_attention(q, k, v, bias)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_sdpa_scale(device, qkv):
    q, k, v = qkv
    out = F.scaled_dot_product_attention(t(q, device), t(k, device), t(v, device), scale=0.3)
    expected, _ = np_attention(q, k, v, scale=0.3)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_sdpa_weights_are_distributions(device, qkv):
    q, k, v = qkv
    _, weights = attention(t(q, device), t(k, device), t(v, device), is_causal=True)
    w = weights.numpy()
    assert w.shape == (2, 3, 5, 6)
    assert np.all(w >= 0)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-12)


def test_sdpa_dropout_zeroes_and_rescales_weights(device, qkv):
    q, k, v = qkv
    args = (t(q, device), t(k, device), t(v, device))
    _, clean = attention(*args)
    output, dropped = attention(*args, dropout_p=0.5)
    clean, dropped_np = clean.numpy(), dropped.numpy()
    kept = dropped_np != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(dropped_np[kept], clean[kept] / 0.5, rtol=1e-12)
    np.testing.assert_allclose(output.numpy(), dropped_np @ v, rtol=1e-12, atol=1e-12)


def test_sdpa_errors(device, qkv):
    q, k, v = (t(a, device) for a in qkv)
    with pytest.raises(ValueError, match="same number of features"):
        F.scaled_dot_product_attention(q, k[..., :3], v)
    with pytest.raises(ValueError, match="same length"):
        F.scaled_dot_product_attention(q, k, v[..., :4, :])
    with pytest.raises(ValueError, match="not both"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((5, 6), bool),
                                       is_causal=True)


def test_sdpa_gradcheck(device):
    rng = np.random.default_rng(5)
    q, k, v = (t(rng.standard_normal(shape), device)
               for shape in ((2, 3, 4), (2, 5, 4), (2, 5, 3)))
    gradcheck(F.scaled_dot_product_attention, [q, k, v])
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k[:, :3], v[:, :3],
                                                             is_causal=True), [q, k, v])


def test_sdpa_gradcheck_masks(device):
    rng = np.random.default_rng(6)
    q, k, v = (t(rng.standard_normal(shape), device) for shape in ((3, 2), (4, 2), (4, 3)))
    bias = t(rng.standard_normal((3, 4)), device)
    keep = rng.random((3, 4)) < 0.6
    keep[:, 1] = True
    gradcheck(lambda q, k, v, bias: F.scaled_dot_product_attention(q, k, v, attn_mask=bias),
              [q, k, v, bias])
    # masked keys get no weight, so their gradient must come out exactly 0, not nan
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=keep),
              [q, k, v])


def test_sdpa_gradgradcheck(device):
    rng = np.random.default_rng(7)
    q, k, v = (t(rng.standard_normal(shape), device) for shape in ((2, 2), (3, 2), (3, 2)))
    gradgradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                  [q, k, v])


@given(batch=st.lists(st.integers(0, 2), max_size=2), length=st.integers(0, 3),
       source_length=st.integers(1, 3), features=st.integers(1, 3), causal=st.booleans())
def test_sdpa_shapes_property(batch, length, source_length, features, causal):
    rng = np.random.default_rng(len(batch) + 10 * length + 100 * source_length)
    q = rng.standard_normal((*batch, length, features))
    k = rng.standard_normal((*batch, source_length, features))
    v = rng.standard_normal((*batch, source_length, 2))
    mask = None
    if causal:
        mask = np.where(np.tril(np.ones((length, source_length), dtype=bool)), 0.0, -np.inf)
    expected, _ = np_attention(q, k, v, mask)
    out = F.scaled_dot_product_attention(t(q, "cpu"), t(k, "cpu"), t(v, "cpu"),
                                         is_causal=causal)
    assert out.shape == (*batch, length, 2)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
              [q, k, v])


# ---------------------------------------------------------------- MultiheadAttention


def np_multihead(mha, q, k, v, additive_mask=None):
    """MultiheadAttention by hand from its parameters: q (N, L, E), k and v (N, S, E)."""
    e, h = mha.embed_dim, mha.num_heads
    d = e // h
    w = mha.in_proj_weight.numpy().astype(np.float64)
    b = mha.in_proj_bias.numpy().astype(np.float64)
    w_o = mha.out_proj.weight.numpy().astype(np.float64)
    b_o = mha.out_proj.bias.numpy().astype(np.float64)
    big_q = q @ w[:e].T + b[:e]
    big_k = k @ w[e:2 * e].T + b[e:2 * e]
    big_v = v @ w[2 * e:].T + b[2 * e:]
    n, length, source_length = q.shape[0], q.shape[1], k.shape[1]
    heads = np.zeros((n, length, e))
    weights = np.zeros((n, h, length, source_length))
    for i in range(n):
        for j in range(h):
            cols = slice(j * d, (j + 1) * d)
            scores = big_q[i, :, cols] @ big_k[i, :, cols].T / math.sqrt(d)
            if additive_mask is not None:
                scores = scores + additive_mask
            weights[i, j] = np_softmax(scores)
            heads[i, :, cols] = weights[i, j] @ big_v[i, :, cols]
    return heads @ w_o.T + b_o, weights


@pytest.fixture
def mha_inputs():
    rng = np.random.default_rng(8)
    return rng.standard_normal((2, 4, 6)), rng.standard_normal((2, 5, 6))


def test_mha_parameters_match_pytorch_layout():
    mha = nn.MultiheadAttention(6, 2)
    shapes = {name: p.shape for name, p in mha.named_parameters()}
    assert shapes == {"in_proj_weight": (18, 6), "in_proj_bias": (18,),
                      "out_proj.weight": (6, 6), "out_proj.bias": (6,)}
    assert list(shapes) == ["in_proj_weight", "in_proj_bias", "out_proj.weight",
                            "out_proj.bias"]
    no_bias = nn.MultiheadAttention(6, 2, bias=False)
    assert [name for name, _ in no_bias.named_parameters()] == ["in_proj_weight",
                                                                "out_proj.weight"]
    with pytest.raises(ValueError, match="multiple of num_heads"):
        nn.MultiheadAttention(6, 4)


def test_mha_init():
    e = 64
    mha = nn.MultiheadAttention(e, 4)
    np.testing.assert_array_equal(mha.in_proj_bias.numpy(), 0.0)
    np.testing.assert_array_equal(mha.out_proj.bias.numpy(), 0.0)
    # xavier_uniform_ on (3E, E): U(-a, a), a = sqrt(6 / (E + 3E)), variance a^2 / 3
    w = mha.in_proj_weight.numpy()
    bound = math.sqrt(6.0 / (e + 3 * e))
    assert np.abs(w).max() <= bound
    variance = bound ** 2 / 3
    # the sample variance of n uniforms has a standard error of about 0.9 variance / sqrt n
    assert abs(w.var() - variance) < 5 * 0.9 * variance / math.sqrt(w.size)
    # out_proj keeps Linear's default: U(-1/sqrt(E), 1/sqrt(E))
    assert np.abs(mha.out_proj.weight.numpy()).max() <= 1 / math.sqrt(e)


def test_mha_matches_manual_computation(device, mha_inputs):
    q, kv = mha_inputs
    mha = nn.MultiheadAttention(6, 3, batch_first=True).double().to(device)
    minigen.manual_seed(1)
    for p in mha.parameters():  # non-zero biases, so they are checked too
        nn.init.uniform_(p, -0.5, 0.5)
    out, weights = mha(t(q, device), t(kv, device), t(kv, device),
                       average_attn_weights=False)
    expected, expected_weights = np_multihead(mha, q, kv, kv)
    assert out.shape == (2, 4, 6) and weights.shape == (2, 3, 4, 5)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.numpy(), expected_weights, rtol=1e-10, atol=1e-12)
    _, averaged = mha(t(q, device), t(kv, device), t(kv, device))
    np.testing.assert_allclose(averaged.numpy(), expected_weights.mean(1), rtol=1e-10)


def test_mha_shapes_and_layouts(device, mha_inputs):
    q, kv = mha_inputs
    mha = nn.MultiheadAttention(6, 2).double().to(device)
    batch_first = nn.MultiheadAttention(6, 2, batch_first=True).double().to(device)
    batch_first.load_state_dict(mha.state_dict())
    # sequence-first (L, N, E) gives the same numbers as batch-first (N, L, E)
    out_seq, w_seq = mha(t(q.transpose(1, 0, 2), device), t(kv.transpose(1, 0, 2), device),
                         t(kv.transpose(1, 0, 2), device))
    out_bf, w_bf = batch_first(t(q, device), t(kv, device), t(kv, device))
    assert out_seq.shape == (4, 2, 6) and out_bf.shape == (2, 4, 6)
    assert w_seq.shape == w_bf.shape == (2, 4, 5)
    np.testing.assert_allclose(out_seq.numpy().transpose(1, 0, 2), out_bf.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w_seq.numpy(), w_bf.numpy(), rtol=1e-12)
    # unbatched (L, E) is the batch of one
    out_one, w_one = mha(t(q[0], device), t(kv[0], device), t(kv[0], device))
    assert out_one.shape == (4, 6) and w_one.shape == (4, 5)
    np.testing.assert_allclose(out_one.numpy(), out_bf.numpy()[0], rtol=1e-12)
    out_none, w_none = mha(t(q[0], device), t(kv[0], device), t(kv[0], device),
                           need_weights=False)
    assert w_none is None
    np.testing.assert_allclose(out_none.numpy(), out_one.numpy(), rtol=1e-12)


def test_mha_masks(device, mha_inputs):
    q, kv = mha_inputs
    mha = nn.MultiheadAttention(6, 2, batch_first=True).double().to(device)
    rng = np.random.default_rng(9)
    blocked = rng.random((4, 5)) < 0.5  # MultiheadAttention: True = NOT allowed to attend
    blocked[:, 2] = False
    args = (t(q, device), t(kv, device), t(kv, device))
    out, weights = mha(*args, attn_mask=t(blocked, device))
    expected, _ = np_multihead(mha, q, kv, kv, np.where(blocked, -np.inf, 0.0))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)
    assert np.all(weights.numpy()[:, blocked] == 0)
    float_out, _ = mha(*args, attn_mask=t(np.where(blocked, -np.inf, 0.0), device))
    np.testing.assert_allclose(float_out.numpy(), out.numpy(), rtol=1e-12)
    # per-head masks (N * num_heads, L, S)
    per_head = np.broadcast_to(blocked, (4, 4, 5))
    head_out, _ = mha(*args, attn_mask=t(per_head, device))
    np.testing.assert_allclose(head_out.numpy(), out.numpy(), rtol=1e-12)
    # is_causal alone applies the causal mask
    causal_out, causal_weights = mha(*args, is_causal=True)
    expected, _ = np_multihead(mha, q, kv, kv, np.where(np.tril(np.ones((4, 5))), 0, -np.inf))
    np.testing.assert_allclose(causal_out.numpy(), expected, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="attn_mask must have shape"):
        mha(*args, attn_mask=blocked[:3])


def test_mha_key_padding_mask_ignores_padded_keys(device, mha_inputs):
    q, kv = mha_inputs
    mha = nn.MultiheadAttention(6, 2, batch_first=True).double().to(device)
    padding = np.zeros((2, 5), dtype=bool)
    padding[0, 3:] = True  # the first sequence has 3 real keys, the second 5
    out, weights = mha(t(q, device), t(kv, device), t(kv, device),
                       key_padding_mask=t(padding, device))
    changed = kv.copy()
    changed[0, 3:] = 100.0
    out_changed, _ = mha(t(q, device), t(changed, device), t(changed, device),
                         key_padding_mask=t(padding, device))
    np.testing.assert_allclose(out_changed.numpy(), out.numpy(), rtol=1e-12)
    assert np.all(weights.numpy()[0, :, 3:] == 0)
    expected_first, _ = np_multihead(mha, q[:1], kv[:1, :3], kv[:1, :3])
    np.testing.assert_allclose(out.numpy()[:1], expected_first, rtol=1e-10, atol=1e-12)
    # with a causal attn_mask as well, both masks apply
    causal = ~np.tril(np.ones((4, 5), dtype=bool))
    both, _ = mha(t(q, device), t(kv, device), t(kv, device),
                  key_padding_mask=t(padding, device), attn_mask=t(causal, device))
    expected_first, _ = np_multihead(mha, q[:1], kv[:1, :3], kv[:1, :3],
                                     np.where(causal[:, :3], -np.inf, 0.0))
    np.testing.assert_allclose(both.numpy()[:1], expected_first, rtol=1e-10, atol=1e-12)


def test_mha_dropout_only_in_training(device, mha_inputs):
    q, kv = mha_inputs
    mha = nn.MultiheadAttention(6, 2, dropout=0.5, batch_first=True).double().to(device)
    args = (t(q, device), t(kv, device), t(kv, device))
    mha.eval()
    out_eval, _ = mha(*args)
    expected, _ = np_multihead(mha, q, kv, kv)
    np.testing.assert_allclose(out_eval.numpy(), expected, rtol=1e-10, atol=1e-12)
    mha.train()
    out_train, weights = mha(*args, average_attn_weights=False)
    assert not np.allclose(out_train.numpy(), expected)
    assert np.any(weights.numpy() == 0)


def test_mha_gradients(device, mha_inputs):
    q, kv = mha_inputs
    mha = nn.MultiheadAttention(4, 2, batch_first=True).double().to(device)
    q, kv = q[:, :3, :4], kv[:, :2, :4]
    gradcheck(lambda q, k, v: mha(q, k, v, need_weights=False)[0],
              [t(q, device), t(kv, device), t(kv * 0.5, device)])
    out, _ = mha(t(q, device), t(kv, device), t(kv, device))
    out.sum().backward()
    for name, p in mha.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        assert np.abs(p.grad.numpy()).sum() > 0, name


def test_mha_shape_errors(mha_inputs):
    q, kv = mha_inputs
    mha = nn.MultiheadAttention(6, 2, batch_first=True)
    with pytest.raises(ValueError, match="embed_dim=6"):
        mha(t(q[..., :4], "cpu"), t(kv, "cpu"), t(kv, "cpu"))
    with pytest.raises(ValueError, match="same shape"):
        mha(t(q, "cpu"), t(kv, "cpu"), t(kv[:, :3], "cpu"))
    with pytest.raises(ValueError, match="3-d"):
        mha(t(q, "cpu"), t(kv[0], "cpu"), t(kv[0], "cpu"))
