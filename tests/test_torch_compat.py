"""A PyTorch user is at home: tutorial-style snippets, each written once for a module
called `torch`, run with minigen (always) and with PyTorch (where it is installed), and
the results compared: values (float32 to 1e-5), dtypes, shapes, booleans and strings.

Each snippet is the kind of code a tutorial writes; only `torch` changes between the
two runs, as `import minigen as torch` would change it.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import minigen

SNIPPETS = []


def snippet(function):
    SNIPPETS.append(function)
    return function


def data(torch, *shape: int, low: float = -2.0, high: float = 2.0, seed: int = 0):
    """The same float32 values in either library, from NumPy."""
    values = np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)
    return torch.tensor(values)


# ---------------------------------------------------------------- the first lines


@snippet
def first_lines(torch):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    x = torch.zeros(2, 3, device=device)
    return [x.device.type, device.type, str(torch.device("cpu")), x.is_cuda,
            torch.device("cuda", 1).index, str(torch.device("cuda:0"))]


@snippet
def dtypes(torch):
    return [torch.tensor([1, 2]).dtype == torch.int64, torch.tensor([1.5]).dtype == torch.float32,
            torch.tensor([True]).dtype == torch.bool, torch.float == torch.float32,
            torch.long == torch.int64, torch.double == torch.float64, torch.half == torch.float16,
            torch.int == torch.int32, torch.get_default_dtype() == torch.float32,
            torch.zeros(2).double().dtype == torch.float64, torch.is_tensor(torch.ones(1)),
            torch.is_floating_point(torch.ones(1)), float(torch.finfo(torch.float32).eps),
            torch.ones(2, 3).size() == torch.Size([2, 3]), torch.numel(torch.ones(2, 3))]


# ---------------------------------------------------------------- making tensors


@snippet
def creation(torch):
    x = data(torch, 2, 3)
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    shared = torch.from_numpy(array)
    array[0, 0] = 100.0  # from_numpy shares memory
    return [torch.arange(5), torch.arange(1, 2, 0.25), torch.linspace(0, 1, 5), torch.eye(3),
            torch.full((2, 2), 7), torch.full((2,), 0.5), torch.zeros_like(x),
            torch.ones_like(x, dtype=torch.float64), torch.empty(2, 3).shape,
            torch.empty_like(x).shape, torch.as_tensor([1.0, 2.0]), shared,
            torch.tensor(array), x.new_zeros(2), x.new_ones((1, 2)), x.new_full((2,), 3.0),
            x.new_tensor([1.0, 2.0]), torch.randn(3, 4).shape, torch.rand(2, 2).dtype]


@snippet
def random_draws_have_the_right_kind(torch):
    torch.manual_seed(0)
    k = torch.randint(5, (1000,))
    m = torch.randint(-3, 3, (2, 500))
    probs = torch.tensor([[0.1, 0.0, 0.9], [0.5, 0.5, 0.0]])
    draws = torch.multinomial(probs, 200, replacement=True)
    picks = torch.multinomial(probs, 2)
    coins = torch.bernoulli(torch.full((1000,), 0.3))
    z = torch.normal(2.0, 3.0, (4000,))
    w = torch.normal(torch.zeros(3), torch.ones(3))
    perm = torch.randperm(6)
    return [k.dtype, bool((k >= 0).all()), bool((k < 5).all()), m.shape,
            bool((m >= -3).all() and (m < 3).all()), draws.shape,
            bool((draws[0] != 1).all()), bool((draws[1] != 2).all()), picks.shape,
            sorted(picks[1].tolist()), bool(((coins == 0) | (coins == 1)).all()),
            abs(coins.mean().item() - 0.3) < 0.05, abs(z.mean().item() - 2.0) < 0.2,
            abs(z.std().item() - 3.0) < 0.2, w.shape, sorted(perm.tolist())]


# ---------------------------------------------------------------- comparisons


@snippet
def comparisons(torch):
    x = torch.tensor([1.0, float("nan"), 3.0, float("inf"), -2.0])
    y = torch.tensor([2.0, 2.0, 3.0, 0.0, -2.0])
    big, small = torch.gt(x, y), torch.le(x, 2)
    return [torch.lt(x, y), torch.le(x, y), small, big, torch.ge(x, 3.0), torch.eq(x, y),
            torch.ne(x, y), torch.logical_and(big, small), torch.logical_or(big, small),
            torch.logical_not(big), torch.logical_xor(big, small), torch.isnan(x),
            torch.isfinite(x), torch.isinf(x), x.isnan(), x.eq(y), x.gt(0), x > y, ~big,
            big & small, big | small, torch.equal(y, y.clone()), torch.equal(x, y),
            torch.allclose(y, y + 1e-7), torch.isclose(y, y + 1e-3, atol=1e-2),
            torch.where(torch.isnan(x), torch.zeros_like(x), x)]


# ---------------------------------------------------------------- max, min and friends


@snippet
def max_and_min_in_every_form(torch):
    x = data(torch, 3, 4)
    y = data(torch, 3, 4, seed=1)
    values, indices = torch.max(x, 1)
    return [torch.max(x), torch.min(x), values, indices, torch.max(x, y), torch.min(x, y),
            torch.max(x, dim=0, keepdim=True).values, torch.min(x, 0)[1],
            x.max(), x.max(1).indices, x.min(dim=1).values, x.max(y), torch.argmax(x),
            torch.argmax(x, dim=1), x.argmin(0), torch.amax(x, (0, 1)), x.amin(dim=1)]


@snippet
def overload_errors_list_the_forms(torch):
    x = torch.ones(2)
    first_lines = []
    for call in (lambda: torch.max(x, "1"), lambda: x.max("1"), lambda: torch.min(x, 1.5),
                 lambda: torch.clamp(x, "a")):
        try:
            call()
        except TypeError as error:
            first_lines.append(str(error).splitlines()[0])
    return first_lines


# ---------------------------------------------------------------- Tensor methods


@snippet
def tensor_methods(torch):
    x = data(torch, 2, 3, 4)
    return [x.size(), x.size(1), x.shape, x.dim(), x.ndim, x.numel(), x.nelement(),
            x.element_size(), x[0, 1, 2].item(), x[0].tolist(), x.detach(), x.clone(),
            x.to(torch.float64).dtype, x.numpy(), x.view(6, 4), x.view(-1), x.reshape(4, -1),
            x.view_as(torch.zeros(24)), x.reshape_as(torch.zeros(3, 8)), x.permute(2, 0, 1),
            x.transpose(0, 2), x[0].t(), x[0].T, x.unsqueeze(1).shape, x[:1].squeeze(0),
            x.flatten(1), x.flatten(), x[:, :1].expand(2, 5, 4), x.repeat(2, 1, 1),
            x.repeat(2, 1, 1, 1).shape, x.chunk(2, dim=2), x.split(1, dim=1),
            x.split([1, 2], dim=1), x.unbind(1), x.narrow(2, 1, 2), x.contiguous(),
            x.type_as(torch.zeros(1, dtype=torch.float64)).dtype, x.float().dtype,
            x.long().dtype, x.int().dtype, x.bool().dtype, x.half().dtype,
            x.is_floating_point(), len(x), [row.shape for row in x]]


@snippet
def joining_and_indexing(torch):
    x = data(torch, 3, 4)
    index = torch.tensor([[0, 0, 2], [1, 3, 3], [2, 1, 0]])
    return [torch.cat([x, x], dim=1), torch.cat((x, x)), torch.stack([x, x], dim=1),
            torch.concat([x, x], 0), torch.gather(x, 1, index), x.gather(1, index[:, :2]),
            torch.index_select(x, 0, torch.tensor([2, 0])), x.index_select(1,
                                                                           torch.tensor([3])),
            torch.masked_select(x, x > 0), torch.flip(x, [0]), x.flip(1), torch.roll(x, 1, 1),
            x.roll(-1), torch.tril(x), torch.triu(x, 1), x.tril(-1), torch.nonzero(x > 0),
            torch.where(x > 0), x[x > 0], x[[0, 2]], x[:, 1], x[..., -1], x[None, 1:].shape,
            torch.unbind(x), torch.split(x, 2), torch.chunk(x, 3, 1), torch.narrow(x, 0, 1, 2)]


@snippet
def meshgrid_and_broadcasting(torch):
    a, b = torch.arange(3.0), torch.arange(2.0)
    gi, gj = torch.meshgrid(a, b, indexing="ij")
    gx, gy = torch.meshgrid(a, b, indexing="xy")
    return [gi, gj, gx, gy, torch.broadcast_to(a, (2, 3)), a.expand(4, 3),
            a.unsqueeze(1) + b, torch.outer(a, a), torch.dot(a, a)]


# ---------------------------------------------------------------- maths and reductions


@snippet
def elementwise_maths(torch):
    x = data(torch, 2, 5)
    p = data(torch, 2, 5, low=0.1, high=3.0)
    half = torch.tensor([0.5, 1.5, 2.5, -0.5, -2.5])
    return [torch.abs(x), torch.exp(x), torch.expm1(x * 1e-4), torch.log(p),
            torch.log1p(p * 1e-6), torch.log2(p), torch.log10(p), torch.sqrt(p),
            torch.rsqrt(p), torch.reciprocal(p), torch.square(x), torch.sin(x), torch.cos(x),
            torch.tanh(x), torch.sigmoid(x), torch.relu(x), torch.erf(x), torch.floor(x),
            torch.ceil(x), torch.round(half), torch.round(x, decimals=1), torch.trunc(x),
            torch.sign(x), x.sign(), torch.clamp(x, min=0.0), torch.clamp(x, -1.0, 1.0),
            x.clamp(max=0.5), torch.clip(x, -0.5, 0.5),
            torch.clamp(x, min=torch.zeros(5), max=torch.ones(5)), torch.lerp(x, p, 0.25),
            x.lerp(p, torch.full((2, 5), 0.5)), torch.pow(p, 2), p.pow(0.5), 2 ** x,
            torch.add(x, p, alpha=2), torch.sub(x, p, alpha=0.5), x.add(p, alpha=3),
            torch.mul(x, 2), torch.div(x, p), torch.neg(x), torch.maximum(x, p),
            torch.minimum(x, p), x.masked_fill(x > 0, 0.0), torch.masked_fill(x, x < 0, -1.0),
            x @ x.T, torch.matmul(x, x.T), torch.mm(x, x.T), torch.bmm(x[None], x.T[None])]


@snippet
def reductions(torch):
    x = data(torch, 3, 4)
    return [x.sum(), x.sum(1), x.sum(dim=(0, 1)), torch.sum(x, 0, keepdim=True), x.mean(0),
            torch.mean(x, dim=1, keepdim=True), x.std(), x.std(1), torch.std(x, 0),
            x.var(unbiased=False), torch.var(x, 1), torch.logsumexp(x, 1), x.cumsum(0),
            torch.cumsum(x, dim=1), torch.norm(x), x.norm(dim=1), x.norm(p=1, dim=0),
            torch.norm(x, float("inf")), (x > 0).all(), (x > 0).any(dim=1),
            torch.all(x > -5), torch.any(x > 5), torch.softmax(x, 1), x.softmax(dim=0),
            torch.log_softmax(x, dim=1), x.log_softmax(1)]


@snippet
def sorting(torch):
    x = data(torch, 3, 5)
    values, indices = torch.sort(x, dim=1, descending=True)
    top = torch.topk(x, 2)
    return [values, indices, x.sort().values, x.sort(0).indices, torch.argsort(x, dim=1),
            x.argsort(descending=True), top.values, top.indices, x.topk(3, dim=0).values,
            torch.topk(x, 1, largest=False).indices]


# ---------------------------------------------------------------- gradients


@snippet
def gradients_through_the_new_ops(torch):
    x = data(torch, 3, 4).requires_grad_()
    w = data(torch, 3, 4, seed=1, low=0.5, high=1.5).requires_grad_()
    index = torch.tensor([[0, 3], [1, 1], [2, 0]])
    y = (torch.gather(x, 1, index).sum() + x.cumsum(1).pow(2).sum() + torch.log1p(w).sum()
         + torch.norm(x * w, dim=1).sum() + x.sort(dim=1).values[:, -1].sum()
         + torch.lerp(x, w, 0.3).sum() + (x.clamp(min=0) * w).sum()
         + torch.max(x, w).sum() + torch.expm1(x).mean() + x.flip(0)[0].sum()
         + x.roll(1, 1)[:, 0].sum() + x.repeat(1, 2).tril().sum()
         + torch.masked_fill(x, x > 1, 0.0).sum() + x.topk(2).values.sum()
         + torch.std(x, 1).sum() + torch.logsumexp(x, 0).sum())
    y.backward()
    return [y, x.grad, w.grad, x.is_leaf, y.requires_grad, y.grad_fn is not None]


@snippet
def grad_and_no_grad(torch):
    x = data(torch, 4).requires_grad_()
    (g,) = torch.autograd.grad((x ** 3).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)

    @torch.no_grad()
    def sample(z):
        return z * 2

    with torch.set_grad_enabled(False):
        off = (x * 2).requires_grad
    with torch.inference_mode():
        inference = (x * 2).requires_grad
    with torch.no_grad():
        with torch.enable_grad():
            on = (x * 2).requires_grad
    return [g, h, sample(x).requires_grad, off, inference, on, torch.is_grad_enabled()]


# ---------------------------------------------------------------- in place


@snippet
def manual_sgd_with_in_place_updates(torch):
    x = data(torch, 8, 3)
    target = data(torch, 8, 1, seed=1)
    w = torch.zeros(3, 1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    losses = []
    for _ in range(5):
        loss = ((x @ w + b - target) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= 0.1 * w.grad
            b.sub_(0.1 * b.grad)
            w.grad.zero_()
            b.grad.zero_()
        losses.append(loss.item())
    return [losses, w, b, w.is_leaf, w.requires_grad]


@snippet
def in_place_ops(torch):
    x = torch.zeros(2, 3)
    x.add_(1).mul_(3).sub_(torch.ones(3), alpha=0.5).div_(2).clamp_(max=1.2)
    y = torch.arange(6.0).reshape(2, 3)
    y[0] = 5.0
    y[y > 4] = -1.0
    y[1, 1:] = torch.tensor([7.0, 8.0])
    z = torch.empty(3).fill_(2.0)
    z.copy_(torch.tensor([1, 2, 3]))
    labels = torch.tensor([2, 0, 1])
    one_hot = torch.zeros(3, 3).scatter_(1, labels.unsqueeze(1), 1.0)
    m = torch.arange(4.0)
    m.masked_fill_(m > 1, 0.0)
    m += 1
    m *= 2
    n = torch.ones(3)
    alias = n.detach()
    n.zero_()
    return [x, y, z, one_hot, m, alias, torch.ones(2).pow_(3), torch.ones(2).neg_(),
            torch.full((2,), 4.0).sqrt_(), torch.zeros(2).exp_(), torch.ones(2).abs_()]


@snippet
def in_place_on_a_leaf_that_requires_grad_is_refused(torch):
    w = torch.ones(3, requires_grad=True)
    messages = []
    for change in (lambda: w.add_(1), lambda: w.zero_(), lambda: w.__setitem__(0, 2.0)):
        try:
            change()
        except RuntimeError as error:
            messages.append(str(error).splitlines()[0])
    with torch.no_grad():
        w.mul_(2)
    return [messages, w]


# ---------------------------------------------------------------- nn, init, utils


@snippet
def init_and_clipping(torch):
    nn = torch.nn
    w = torch.empty(3, 4)
    nn.init.zeros_(w)
    v = nn.init.constant_(torch.empty(2, 2), 0.3)
    e = nn.init.eye_(torch.empty(3, 3))
    o = nn.init.ones_(torch.empty(2))
    layer = nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.arange(12.0).reshape(3, 4) / 10)
        layer.bias.fill_(0.5)
    loss = layer(torch.ones(2, 4)).pow(2).sum()
    loss.backward()
    total = nn.utils.clip_grad_norm_(layer.parameters(), max_norm=1.0)
    vector = nn.utils.parameters_to_vector(layer.parameters())
    nn.utils.vector_to_parameters(vector * 2, layer.parameters())
    nn.utils.clip_grad_value_(layer.parameters(), 0.1)
    return [w, v, e, o, total, layer.weight.grad, layer.bias.grad, vector, layer.weight,
            nn.init.calculate_gain("relu"), nn.init.calculate_gain("leaky_relu", 0.2)]


@snippet
def modules(torch):
    nn = torch.nn
    F = torch.nn.functional
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(torch.linspace(-1, 1, p.numel()).reshape(p.shape) * (i + 1) / 4)
    x = data(torch, 5, 4)
    model.eval()
    evaluating = model.training
    model.train()
    out = model(x)
    loss = F.cross_entropy(out, torch.tensor([0, 1, 1, 0, 1]))
    model.zero_grad()
    loss.backward()
    return [list(dict(model.named_parameters())), list(model.state_dict()), evaluating,
            model.training, sum(p.numel() for p in model.parameters()), out, loss,
            model[0].weight.grad, len(list(model.modules())), len(list(model.children())),
            [name for name, _ in model.named_modules()]]


@snippet
def functional(torch):
    F = torch.nn.functional
    x = data(torch, 2, 3, 4, 4)
    v = data(torch, 3, 5)
    return [F.normalize(v, dim=1), F.normalize(v, p=1, dim=0), F.pad(x, (1, 2)).shape,
            F.pad(v, (1, 1), value=3.0), F.logsigmoid(v), F.softmax(v, dim=1),
            F.log_softmax(v, dim=-1), F.relu(v), F.leaky_relu(v, 0.2), F.gelu(v), F.silu(v),
            F.elu(v), F.softplus(v), F.one_hot(torch.tensor([0, 2]), 3), F.mse_loss(v, v * 2),
            F.binary_cross_entropy(torch.sigmoid(v), torch.ones(3, 5)),
            F.max_pool2d(x, 2), F.avg_pool2d(x, 2), F.interpolate(x, scale_factor=2).shape]


# ---------------------------------------------------------------- optim and schedules


@snippet
def optimisers_and_schedules(torch):
    optim = torch.optim
    lrs = []
    for make in (lambda opt: optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
                 lambda opt: optim.lr_scheduler.MultiStepLR(opt, milestones=[1, 3], gamma=0.1),
                 lambda opt: optim.lr_scheduler.ExponentialLR(opt, gamma=0.9),
                 lambda opt: optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4),
                 lambda opt: optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1 / (epoch + 1))):
        p = torch.nn.Parameter(torch.ones(2))
        opt = optim.SGD([p], lr=1.0)
        schedule = make(opt)
        seen = []
        for _ in range(5):
            opt.zero_grad()
            (p * p).sum().backward()
            opt.step()
            schedule.step()
            seen.append(schedule.get_last_lr()[0])
        lrs.append(seen)
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    adam = optim.Adam([w], lr=0.1, betas=(0.9, 0.99))
    for _ in range(3):
        adam.zero_grad()
        (w ** 2).sum().backward()
        adam.step()
    return [lrs, w]


# ---------------------------------------------------------------- data


@snippet
def datasets_and_loaders(torch):
    from_utils = torch.utils.data
    x = data(torch, 7, 2)
    y = torch.arange(7)
    loader = from_utils.DataLoader(from_utils.TensorDataset(x, y), batch_size=3)
    batches = [(bx, by) for bx, by in loader]
    dropped = from_utils.DataLoader(from_utils.TensorDataset(x, y), batch_size=3,
                                    drop_last=True, num_workers=0)

    class Squares(from_utils.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full(2, i, dtype=np.float32), i, float(i) / 2, {"id": i}

    square_batches = list(from_utils.DataLoader(Squares(), batch_size=2))
    torch.manual_seed(0)
    train, test = from_utils.random_split(from_utils.TensorDataset(x, y), [5, 2])
    halves = from_utils.random_split(range(10), [0.5, 0.5])
    shuffled = from_utils.DataLoader(from_utils.TensorDataset(y), batch_size=7, shuffle=True)
    (order,) = next(iter(shuffled))
    return [batches, len(loader), len(dropped), square_batches, len(train), len(test),
            sorted(int(t[1]) for t in list(train) + list(test)), [len(h) for h in halves],
            sorted(order.tolist()), from_utils.Subset(range(10), [3, 1])[1]]


@snippet
def save_and_load_a_state_dict(torch):
    import pathlib
    import tempfile

    folder = pathlib.Path(tempfile.mkdtemp())
    model = torch.nn.Linear(3, 2)
    torch.save(model.state_dict(), folder / "model.pt")
    other = torch.nn.Linear(3, 2)
    result = other.load_state_dict(torch.load(folder / "model.pt"))
    return [bool(torch.equal(model.weight, other.weight)),
            bool(torch.equal(model.bias, other.bias)), list(result.missing_keys)]


@snippet
def the_issues_vae_tutorial(torch):
    """The issue's case: an MLP VAE with the continuous Bernoulli correction, in the
    tutorial's own calls (torch.le/gt/logical_or, torch.where, torch.max(a, b))."""
    nn, F = torch.nn, torch.nn.functional

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 64)
            self.fc21 = nn.Linear(64, 8)
            self.fc22 = nn.Linear(64, 8)
            self.fc3 = nn.Linear(8, 64)
            self.fc4 = nn.Linear(64, 784)

        def encode(self, x):
            h1 = F.relu(self.fc1(x))
            return self.fc21(h1), self.fc22(h1)

        def reparameterize(self, mu, logvar, eps):
            std = torch.exp(0.5 * logvar)
            return mu + eps * std

        def decode(self, z):
            h3 = F.relu(self.fc3(z))
            return torch.sigmoid(self.fc4(h3))

        def forward(self, x, eps):
            mu, logvar = self.encode(x.view(-1, 784))
            z = self.reparameterize(mu, logvar, eps)
            return self.decode(z), mu, logvar

    def cont_bern_log_norm(lam, l_lim=0.49, u_lim=0.51):
        outside = torch.logical_or(torch.le(lam, l_lim), torch.gt(lam, u_lim))
        cut_lam = torch.where(outside, lam, l_lim * torch.ones_like(lam))
        log_norm = (torch.log(torch.abs(2.0 * torch.atanh(1 - 2.0 * cut_lam)))
                    - torch.log(torch.abs(1 - 2.0 * cut_lam)))
        # on the device: minigen lacks PyTorch's exemption of 0-d CPU tensors
        log_2 = torch.log(torch.tensor(2.0, device=lam.device))
        taylor = (log_2 + 4.0 / 3.0 * torch.pow(lam - 0.5, 2)
                  + 104.0 / 45.0 * torch.pow(lam - 0.5, 4))
        return torch.where(outside, log_norm, taylor)

    def loss_function(recon_x, x, mu, logvar):
        bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        log_norm = torch.sum(cont_bern_log_norm(recon_x))
        terms.append([bce.item(), kld.item(), log_norm.item()])  # each compared: their
        return bce + kld - log_norm                                # sum nearly cancels

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = VAE().to(device)
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(torch.linspace(-0.01, 0.01, p.numel()).reshape(p.shape) * (-1) ** i)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = data(torch, 16, 1, 28, 28, low=0.0, high=1.0)
    eps = data(torch, 16, 8, seed=2)
    losses, terms = [], []
    model.train()
    for _ in range(3):
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(images.to(device), eps.to(device))
        loss = loss_function(recon_batch, images.to(device), mu, logvar)
        loss.backward()
        losses.append(loss.item() / len(images))
        optimizer.step()
    with torch.no_grad():
        sample = model.decode(eps.to(device)).cpu()
        clipped = torch.max(sample, torch.full_like(sample, 0.5))
    # the losses per image, 12544 terms summed to ~8700 and cancelled to ~1: float32 keeps
    # them to about 1e-4 in either library, so they are checked here and the terms compared
    assert all(abs(a - b) < 1e-3 for a, b in zip(losses, [0.7855, 0.2807, -0.0182]))
    return [terms, sample, sample.shape, clipped.min().item()]


# ---------------------------------------------------------------- comparing


def plain(value):
    """A result as NumPy arrays, lists and Python scalars, whichever library made it."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return np.asarray(value.detach().numpy())
    if isinstance(value, dict):
        return {key: plain(v) for key, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if hasattr(value, "itemsize") and hasattr(value, "kind"):  # a NumPy dtype
        return f"dtype {value}"
    if type(value).__module__ == "torch" and type(value).__name__ == "dtype":
        return f"dtype {str(value).removeprefix('torch.')}"
    return value


def assert_same(ours, theirs, where: str = "result") -> None:
    if isinstance(theirs, np.ndarray):
        assert isinstance(ours, np.ndarray), f"{where}: {type(ours)} where PyTorch gives arrays"
        assert ours.dtype == theirs.dtype, f"{where}: dtype {ours.dtype} vs {theirs.dtype}"
        assert ours.shape == theirs.shape, f"{where}: shape {ours.shape} vs {theirs.shape}"
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6, err_msg=where)
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs), where
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{where}[{key!r}]")
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), (
            f"{where}: {ours!r} vs {theirs!r}")
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(theirs, float):
        assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-6), f"{where}: {ours} vs {theirs}"
    else:
        assert ours == theirs, f"{where}: {ours!r} vs {theirs!r}"


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda s: s.__name__)
def test_the_snippet_runs_in_minigen(snippet):
    assert plain(snippet(minigen)) is not None


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda s: s.__name__)
def test_the_snippet_gives_what_pytorch_gives(snippet):
    torch = pytest.importorskip("torch")
    if ("cuda.is_available" in inspect.getsource(snippet)
            and minigen.cuda.is_available() != torch.cuda.is_available()):
        pytest.skip("the snippet picks its device, and the two libraries see different ones "
                    "(e.g. minigen on the CuPy stand-in beside a CPU PyTorch)")
    assert_same(plain(snippet(minigen)), plain(snippet(torch)))
