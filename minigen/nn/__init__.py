"""minigen.nn: modules (layers with parameters) and their functional forms."""
from minigen.nn import functional
