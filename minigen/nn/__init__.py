"""minigen.nn: modules (layers with parameters) and their functional forms."""
from minigen.left_out import stand_in
from minigen.nn import functional, init, utils
from minigen.nn.attention import MultiheadAttention
from minigen.nn.conv import AvgPool2d, Conv2d, ConvTranspose2d, MaskedConv2d, MaxPool2d, Upsample
from minigen.nn.coupling import AffineCoupling
from minigen.nn.dropout import Dropout
from minigen.nn.embedding import Embedding
from minigen.nn.layers import (
                               ELU,
                               GELU,
                               Flatten,
                               Identity,
                               LeakyReLU,
                               Linear,
                               LogSoftmax,
                               ReLU,
                               Sigmoid,
                               SiLU,
                               Softmax,
                               Softplus,
                               Tanh,
                               Unflatten,
)
from minigen.nn.losses import (
                               BCELoss,
                               BCEWithLogitsLoss,
                               CrossEntropyLoss,
                               KLDivLoss,
                               L1Loss,
                               MSELoss,
                               NLLLoss,
)
from minigen.nn.module import (
                               Module,
                               ModuleDict,
                               ModuleList,
                               Parameter,
                               Sequential,
                               device_of,
                               evaluating,
)
from minigen.nn.normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from minigen.nn.recurrent import LSTM, LSTMCell


def __getattr__(name: str):
    """A layer PyTorch has and minigen leaves out: its stand-in, which says what to use."""
    return stand_in("torch.nn", name, __name__)


__all__ = [
    "functional", "init", "utils",
    "ELU", "GELU", "Flatten", "Identity", "LeakyReLU", "Linear", "LogSoftmax", "ReLU", "Sigmoid",
    "SiLU", "Softmax", "Softplus", "Tanh", "Unflatten",
    "Module", "ModuleDict", "ModuleList", "Parameter", "Sequential", "device_of", "evaluating",
    "BatchNorm1d", "BatchNorm2d", "GroupNorm", "LayerNorm", "Dropout", "Embedding",
    "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "KLDivLoss", "L1Loss", "MSELoss",
    "NLLLoss",
    "MultiheadAttention", "Conv2d", "ConvTranspose2d", "MaskedConv2d", "AffineCoupling",
    "MaxPool2d", "AvgPool2d", "Upsample", "LSTM", "LSTMCell",
]
