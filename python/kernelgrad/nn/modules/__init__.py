"""The layer classes of kg.nn, one family per file."""
from .activation import ELU, GELU, Hardtanh, LeakyReLU, Mish, PReLU, ReLU, ReLU6, Sigmoid, SiLU, Softplus, Softsign, Tanh
from .batchnorm import BatchNorm1d, BatchNorm2d
from .container import ModuleDict, ModuleList, Sequential
from .conv import Conv2d, ConvTranspose2d
from .distance import CosineSimilarity
from .dropout import Dropout
from .flatten import Flatten, Unflatten
from .linear import Identity, Linear
from .loss import (
    BCELoss, BCEWithLogitsLoss, HingeEmbeddingLoss, HuberLoss, KLDivLoss, L1Loss, MarginRankingLoss, MSELoss,
    SmoothL1Loss,
)
from .module import Module
from .normalization import LayerNorm
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d, MaxUnpool2d, Upsample
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from .softmax import CrossEntropyLoss, LogSoftmax, NLLLoss, Softmax
from .sparse import Embedding
from .transformer import (
    MultiheadAttention, PositionalEncoding, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
    TransformerEncoderLayer, generate_square_subsequent_mask,
)

__all__ = [
    "Module", "Sequential", "ModuleList", "ModuleDict", "Identity", "Linear", "Flatten", "Unflatten", "Dropout",
    "Embedding", "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "GELU", "SiLU", "Mish", "Softplus", "Sigmoid", "Tanh",
    "Hardtanh", "Softsign", "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss",
    "KLDivLoss", "HingeEmbeddingLoss", "MarginRankingLoss", "CosineSimilarity",
]
__all__ += ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]
__all__ += ["Conv2d", "ConvTranspose2d"]
__all__ += ["Softmax", "LogSoftmax", "CrossEntropyLoss", "NLLLoss", "LayerNorm", "BatchNorm1d", "BatchNorm2d"]
__all__ += ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "MaxUnpool2d", "Upsample"]
__all__ += ["MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder", "TransformerDecoderLayer",
            "TransformerDecoder", "PositionalEncoding", "generate_square_subsequent_mask"]
