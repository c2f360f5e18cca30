"""The PyTorch names minigen leaves out on purpose, each with what to use instead.

A left-out name still exists, so `from minigen.nn import LSTM` works, but it is a
LeftOut stand-in: calling it, or reaching for an attribute of it, raises
LeftOutError, which says it is left out and what to use instead. Each namespace asks
`stand_in(namespace, name)` from its module __getattr__ (Tensor from its own
__getattr__), so nothing here shadows a real name. docs/torch_compat.md lists them, made
from this table by python -m minigen.torch_table.
"""
from __future__ import annotations

_NO_RNN = ("minigen's recurrent layers are LSTM and LSTMCell (minigen/nn/recurrent.py); "
           "write another cell the same way, with Linear layers, sigmoid and tanh")
_NO_GENERATOR = ("minigen has one generator per device, seeded by minigen.manual_seed(seed); "
                 "leave generator= out")

LEFT_OUT: dict[str, dict[str, str]] = {
    "torch": {
        "compile": "minigen runs every op eagerly, in Python you can read; drop the call",
        "jit": "minigen runs every op eagerly; drop the scripting or tracing",
        "fft": "use numpy.fft on x.numpy() (no gradient)",
        "linalg": "use matmul, norm, and numpy.linalg on x.numpy() (no gradient)",
        "distributions": ("write the log-density with minigen ops, as the book's models do "
                          "(minigen.models.vae: log N(x; mu, sigma^2)); sample with "
                          "randn, rand, normal, bernoulli, multinomial"),
        "einsum": "write it with matmul, permute, reshape and sum",
        "prod": ("use x.log().sum(dim).exp() for x > 0, or NumPy's prod on x.numpy() "
                 "(no gradient)"),
        "cumprod": "use x.log().cumsum(dim).exp() for x > 0",
        "Generator": _NO_GENERATOR,
        "set_num_threads": ("set OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS) before Python "
                            "starts; NumPy's BLAS reads it once"),
        "get_num_threads": "NumPy's BLAS reads OPENBLAS_NUM_THREADS when Python starts",
        "set_printoptions": "numpy.set_printoptions(...) changes how minigen prints tensors",
        "FloatTensor": "use minigen.tensor(data, dtype=minigen.float32)",
        "LongTensor": "use minigen.tensor(data, dtype=minigen.int64)",
        "ByteTensor": "use minigen.tensor(data, dtype=minigen.uint8)",
        "autocast": "minigen computes in the tensors' own dtype; use .half() to try float16",
        "amp": "minigen computes in the tensors' own dtype; drop the GradScaler",
        "sparse": "minigen tensors are dense NumPy or CuPy arrays",
        "quantization": "minigen tensors are dense NumPy or CuPy arrays",
    },
    "torch.Tensor": {
        "register_hook": ("minigen has no hooks; read the gradient with retain_grad() and "
                          ".grad, or minigen.grad(y, x)"),
        "type": "use .to(dtype), or .dtype to read it",
        "storage": "the data is a NumPy or CuPy array: x.data",
        "data_ptr": "the data is a NumPy or CuPy array: x.data.ctypes.data (NumPy)",
        "stride": "minigen has no strides of its own; x.data.strides are NumPy's, in bytes",
        "is_contiguous": "minigen has no strides of its own; every op takes any tensor",
        "pin_memory": "copies to the GPU are synchronous; drop the call",
        "share_memory_": "minigen runs in one process; drop the call",
        "bernoulli_": "use x.copy_(minigen.bernoulli(p))",
        "random_": "use x.copy_(minigen.randint(low, high, x.shape))",
        "exponential_": "use x.copy_(-minigen.rand(x.shape).log() / rate)",
        "index_add_": "build the sum out of place, with index_select and cat",
        "scatter_add_": "build the sum out of place, with gather and where",
        "prod": "use x.log().sum(dim).exp() for x > 0",
        "cumprod": "use x.log().cumsum(dim).exp() for x > 0",
        "apply_": "use an elementwise op, or NumPy on x.numpy()",
    },
    "torch.nn": {
        "GRU": _NO_RNN, "RNN": _NO_RNN, "GRUCell": _NO_RNN,
        "Transformer": ("build it from MultiheadAttention, LayerNorm and Linear, as the "
                        "GPT lesson does"),
        "TransformerEncoderLayer": "build it from MultiheadAttention, LayerNorm and Linear",
        "TransformerDecoderLayer": "build it from MultiheadAttention, LayerNorm and Linear",
        "Conv1d": "use Conv2d with a height of 1: x.unsqueeze(2), kernel_size=(1, k)",
        "Conv3d": "minigen's convolutions are 2-d",
        "ConvTranspose1d": "use ConvTranspose2d with a height of 1",
        "MaxPool1d": "use MaxPool2d with kernel_size=(1, k) on x.unsqueeze(2)",
        "AdaptiveAvgPool2d": ("for output size 1 use x.mean((2, 3), keepdim=True); otherwise "
                              "AvgPool2d with the matching kernel and stride"),
        "AdaptiveMaxPool2d": "for output size 1 use x.amax((2, 3), keepdim=True)",
        "Dropout2d": "use Dropout (it drops single elements, not whole channels)",
        "InstanceNorm2d": "use GroupNorm(num_channels, num_channels), the same normalisation",
        "PixelShuffle": "use reshape and permute",
        "DataParallel": "minigen uses one device",
        "parallel": "minigen uses one device",
        "SyncBatchNorm": "minigen uses one device; use BatchNorm2d",
        "PReLU": "use LeakyReLU, or max(x, 0) + a * min(x, 0) with a Parameter a",
        "Hardtanh": "use x.clamp(-1, 1)",
        "ReLU6": "use x.clamp(0, 6)",
        "Mish": "use x * F.softplus(x).tanh()",
        "SmoothL1Loss": "write it with where: 0.5 d^2 / beta where |d| < beta, else |d| - beta/2",
        "HuberLoss": "write it with where: 0.5 d^2 where |d| < delta, else delta (|d| - delta/2)",
        "CosineSimilarity": "use (F.normalize(a) * F.normalize(b)).sum(dim)",
        "Bilinear": "use Linear on the outer product",
        "EmbeddingBag": "use Embedding and mean over the bag's dim",
    },
    "torch.nn.Module": {
        "register_forward_hook": "minigen has no hooks; call the layer and keep its output",
        "register_forward_pre_hook": "minigen has no hooks; change the input before the call",
        "register_full_backward_hook": "minigen has no hooks; use retain_grad() on the output",
        "register_backward_hook": "minigen has no hooks; use retain_grad() on the output",
        "share_memory": "minigen runs in one process; drop the call",
        "compile": "minigen runs every op eagerly; drop the call",
    },
    "torch.nn.functional": {
        "unfold": "minigen.ops.conv.im2col_simple shows the same columns; no gradient",
        "fold": "minigen.ops.conv.col2im is the adjoint of im2col",
        "grid_sample": "minigen has no sampling by coordinates",
        "affine_grid": "minigen has no sampling by coordinates",
        "adaptive_avg_pool2d": "for output size 1 use x.mean((2, 3), keepdim=True)",
        "adaptive_max_pool2d": "for output size 1 use x.amax((2, 3), keepdim=True)",
        "conv1d": "use conv2d with a height of 1",
        "conv3d": "minigen's convolutions are 2-d",
        "max_pool1d": "use max_pool2d with kernel_size=(1, k)",
        "pixel_shuffle": "use reshape and permute",
        "cosine_similarity": "use (F.normalize(a) * F.normalize(b)).sum(dim)",
        "smooth_l1_loss": "write it with where",
        "huber_loss": "write it with where",
        "hardtanh": "use x.clamp(-1, 1)",
        "relu6": "use x.clamp(0, 6)",
        "gumbel_softmax": "softmax((logits - log(-log(rand))) / tau), written with minigen ops",
    },
    "torch.nn.init": {
        "orthogonal_": "use xavier_uniform_ or kaiming_normal_",
        "trunc_normal_": "use normal_ and clamp_ under no_grad()",
        "sparse_": "minigen tensors are dense",
        "dirac_": "minigen has no Dirac initialisation",
    },
    "torch.nn.utils": {
        "spectral_norm": "divide the weight by its largest singular value in forward",
        "weight_norm": "keep a direction v and a scale g as Parameters: w = g * v / v.norm()",
        "rnn": "minigen has no packed sequences; pad the batch and use nn.LSTM",
    },
    "torch.optim": {
        "RMSprop": "use Adam (RMSprop with momentum and bias correction) or write the update",
        "Adagrad": "use Adam or SGD",
        "LBFGS": "use Adam or SGD",
        "Adadelta": "use Adam or SGD",
        "RAdam": "use Adam or AdamW",
        "NAdam": "use Adam or AdamW",
    },
    "torch.optim.lr_scheduler": {
        "ReduceLROnPlateau": ("set group['lr'] for each of optimizer.param_groups yourself when "
                              "the loss stops falling"),
        "OneCycleLR": "use LambdaLR with the one-cycle formula as its function",
        "CyclicLR": "use LambdaLR with the cycle as its function",
        "CosineAnnealingWarmRestarts": "use LambdaLR with the restarts as its function",
        "LinearLR": "use LambdaLR(optimizer, lambda epoch: ...) with the linear ramp",
        "SequentialLR": "use LambdaLR with one function that switches at the milestone",
        "ChainedScheduler": "use LambdaLR with the product of the schedules",
        "PolynomialLR": "use LambdaLR(optimizer, lambda epoch: (1 - epoch / total) ** power)",
    },
    "torch.utils.data": {
        "IterableDataset": "use a Dataset with __len__ and __getitem__, or a Python generator",
        "Sampler": "use shuffle=True, or index a Subset in the order you want",
        "RandomSampler": "use shuffle=True",
        "SequentialSampler": "use shuffle=False",
        "WeightedRandomSampler": ("draw indices with minigen.multinomial(weights, n, True) "
                                  "and use a Subset"),
        "BatchSampler": "use batch_size and drop_last",
        "DistributedSampler": "minigen uses one device",
        "get_worker_info": "minigen loads batches in the main process",
        "ConcatDataset": "concatenate the arrays and use one TensorDataset",
    },
    "torch.cuda": {
        "amp": "minigen computes in the tensors' own dtype; drop autocast and GradScaler",
        "memory_allocated": ("use cupy.get_default_memory_pool().used_bytes() "
                             "(minigen's GPU arrays are CuPy's)"),
        "max_memory_allocated": "use cupy.get_default_memory_pool().total_bytes()",
        "set_device": "minigen uses CuPy's current device; set CUDA_VISIBLE_DEVICES instead",
        "current_device": "minigen uses CuPy's current device, cupy.cuda.Device().id",
        "get_device_name": "use cupy.cuda.runtime.getDeviceProperties(0)['name']",
        "Event": "time with time.perf_counter() around minigen.cuda.synchronize()",
    },
    "torch.autograd": {
        "Variable": "Variable and Tensor are one: use minigen.tensor(..., requires_grad=True)",
        "gradcheck": "use minigen.gradcheck.gradcheck (float64, random cotangent)",
        "functional": "use minigen.grad(y, x, create_graph=True) for Jacobian rows and Hessian-"
                      "vector products",
        "profiler": "time steps with time.perf_counter(); python -m benchmarks.overhead",
        "set_detect_anomaly": ("minigen's errors name the op where they happen; a nan loss "
                               "stops minigen.train.fit with the step"),
        "detect_anomaly": "minigen's errors name the op where they happen",
    },
}


class LeftOutError(NotImplementedError):
    """A PyTorch name that minigen leaves out on purpose; the message says what to use."""


class LeftOut:
    """The stand-in for a left-out name: calling it, or any attribute of it, raises
    LeftOutError. `from minigen.nn import LSTM` works; `LSTM(...)` says what to use."""

    def __init__(self, namespace: str, name: str, advice: str):
        self._qualified = f"{namespace}.{name}"
        self._advice = advice

    def error(self) -> LeftOutError:
        return LeftOutError(f"{self._qualified} is left out of minigen on purpose: "
                            f"{self._advice}")

    def __call__(self, *args, **kwargs):
        raise self.error()

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise self.error()

    def __repr__(self) -> str:
        return f"<{self._qualified}: left out of minigen>"


def stand_in(namespace: str, name: str, owner: str) -> LeftOut:
    """The LeftOut stand-in for namespace.name, or the usual AttributeError for a name
    that is not left out (owner: a module's name, or a class's for its objects)."""
    advice = LEFT_OUT.get(namespace, {}).get(name)
    if advice is None:
        if owner[:1].isupper():
            raise AttributeError(f"'{owner}' object has no attribute '{name}'")
        raise AttributeError(f"module '{owner}' has no attribute '{name}'")
    return LeftOut(namespace, name, advice)
