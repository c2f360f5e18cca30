"""minigen.utils, as torch.utils: data (Dataset, TensorDataset, DataLoader, random_split)."""
from minigen.utils import data

__all__ = ["data"]
