"""Chapter 13 in miniature: text-to-image by latent diffusion, as Stable Diffusion does it.
Compress images with an autoencoder, run chapter 8's diffusion in its small latent space,
let the denoiser read a prompt through cross-attention, and sample with classifier-free
guidance; decode the latent to an image at the end.

    model = make_latent_diffusion()                 # autoencoder, prompt encoder, U-Net
    autoencoder_train_step(model, optimizers, images)    # first: the autoencoder alone
    model.set_latent_scale(images)                  # then freeze it; latents to unit std
    diffusion_train_step(model, optimizers, images, labels)  # the prompt-conditioned U-Net
    images = model.sample(["an ankle boot"] * 8, guidance=3.0)   # DDIM in latent space

The three parts, and what they stand in for:

    part                  here                                    Stable Diffusion
    autoencoder           conv KL autoencoder, 1x32x32 -> 4x8x8   KL-f8 VAE, 3x512x512 -> 4x64x64
    prompt encoder        word tokenizer, token + position        CLIP's text transformer
                          embeddings and one layer norm           (DALL-E 2: CLIP; Imagen: T5)
    denoiser              U-Net on the latent, cross-attention    the same, at 64x64
                          at 8x8 and 4x4

The autoencoder (Rombach et al.'s KL-regularised one, not the book's 2-d VAE):

    encoder: Conv 3x3 s2 1->32 (16x16), SiLU, Conv 3x3 s2 32->64 (8x8), SiLU,
             Conv 3x3 64->64, SiLU, Conv 1x1 64 -> 2 x 4: the mean and log-variance of
             q(z | x), z: (4, 8, 8)
    decoder: Conv 3x3 4->64, SiLU, ConvT 4x4 s2 64->32 (16x16), SiLU, ConvT 4x4 s2 32->16
             (32x32), SiLU, Conv 3x3 16->1, sigmoid: pixel probabilities
    loss:    BCE summed over the pixels + KL_WEIGHT KL(q(z|x) || N(0, I)), batch mean

The KL weight is small: the latent should keep nearly everything (the diffusion model,
not the KL term, is the prior), but stay near the origin with a bounded scale. After
training the autoencoder is frozen and its latents are multiplied by one number,
latent_scale = 1 / std (Stable Diffusion's 0.18215), so the diffusion sees unit variance.

Cross-attention (CrossAttention): each latent position asks the prompt's tokens which of
them matter to it,

    Q = W_q LayerNorm(h)  (N, HW, C),   K = W_k c, V = W_v c  (N, S, C),   c: the prompt
    h <- h + W_o softmax(Q K^T / sqrt(C / heads) + mask) V       (per head)

with the padded tokens masked to -inf (they get weight 0). Every prompt starts with a
<start> token (as CLIP's), so the empty prompt of guidance still has one token to attend to.

Training: chapter 8's loss (mean |eps - eps_hat|) and schedule (offset cosine) on the
scaled latents of the frozen encoder; each image's prompt is one of its class's phrasings,
and the empty prompt 15% of the time (PROMPT_DROPOUT), so that one network predicts both
eps(prompt) and eps(empty). Sampling: DDIM (chapter 8's ddim_sample) on the latent with

    eps = eps(empty) + w (eps(prompt) - eps(empty))         (chapter 8's guided_eps)

then divide by latent_scale and decode. The EMA of the denoiser's weights, with chapter
8's warm-up, is what samples.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

import minigen as mg
import minigen.nn as nn
import minigen.nn.functional as F
from minigen import backend
from minigen.autograd import Tensor
from minigen.models import diffusion
from minigen.models.vae import kl_divergence, reparameterize
from minigen.nn.attention import attention
from minigen.optim import Adam, AdamW, Optimizer

IMAGE_SHAPE = (1, 32, 32)  # Fashion-MNIST padded to 32x32
LATENT_SHAPE = (4, 8, 8)  # 256 values per image: a quarter of the 1,024 pixels
KL_WEIGHT = 1e-3  # on the summed KL, beside the BCE summed over 1,024 pixels
WIDTHS = (32, 64, 96)  # the U-Net: down widths at 8x8 and 4x4, then the middle at 2x2
ATTENTION_LEVELS = (0, 1)  # cross-attention at 8x8 and 4x4 (down and up)
EMBEDDING_DIMS, PROMPT_DIMS, HEADS = 32, 64, 4
PROMPT_DROPOUT = 0.15  # classifier-free guidance: the share of empty prompts in training
AUTOENCODER_LR, LR, WEIGHT_DECAY, EMA_DECAY = 1e-3, 1e-3, 1e-4, 0.999
AUTOENCODER_STEPS = 2000  # train_step's first phase (the command line's training)
BATCH_SIZE, EPOCHS, DDIM_STEPS = 64, 10, 20

# ---------------------------------------------------------------- prompts

CLASS_PHRASES = [  # Fashion-MNIST's classes in label order; the first phrase is the class's
    ["a t-shirt", "a top"],
    ["a pair of trousers", "trousers"],
    ["a pullover", "a jumper"],
    ["a dress"],
    ["a coat", "a jacket"],
    ["a sandal"],
    ["a shirt"],
    ["a sneaker", "a trainer"],
    ["a bag", "a handbag"],
    ["an ankle boot", "a boot"],
]
CLASS_PROMPTS = [phrases[0] for phrases in CLASS_PHRASES]  # one prompt per class
PAD, START = "<pad>", "<start>"


class PromptTokenizer:
    """Prompts as word ids: a word-level vocabulary with <pad> = 0 and <start> = 1.

    encode(prompts) -> (N, context_length) int64: <start>, the prompt's words, then
    <pad> up to context_length. The empty prompt "" is <start> alone. Words are split on
    white space and lower-cased; a word outside the vocabulary is a ValueError that lists
    the vocabulary. (CLIP does the same with 49,408 byte-pair tokens and 77 positions.)
    """

    def __init__(self, phrases: Sequence[str], context_length: int | None = None):
        words: list[str] = []
        for phrase in phrases:
            words += [w for w in phrase.lower().split() if w not in words]
        self.words = [PAD, START] + words
        self.ids = {word: i for i, word in enumerate(self.words)}
        longest = 1 + max(len(phrase.split()) for phrase in phrases)
        self.context_length = longest if context_length is None else context_length
        if self.context_length < longest:
            raise ValueError(f"PromptTokenizer: context_length {context_length} is shorter "
                             f"than the longest prompt with <start> ({longest})")

    @property
    def vocabulary(self) -> list[str]:
        """The words a prompt may use (without <pad> and <start>)."""
        return self.words[2:]

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, prompts: str | Sequence[str]) -> np.ndarray:
        if isinstance(prompts, str):
            prompts = [prompts]
        tokens = np.zeros((len(prompts), self.context_length), dtype=np.int64)
        for row, prompt in enumerate(prompts):
            words = prompt.lower().split()
            unknown = [w for w in words if w not in self.ids or w in (PAD, START)]
            if unknown:
                raise ValueError(f"prompt {prompt!r}: unknown word {unknown[0]!r}; the "
                                 f"vocabulary is: {', '.join(self.vocabulary)}")
            if len(words) + 1 > self.context_length:
                raise ValueError(f"prompt {prompt!r}: {len(words)} words, at most "
                                 f"{self.context_length - 1} fit")
            tokens[row, 0] = self.ids[START]
            tokens[row, 1:len(words) + 1] = [self.ids[w] for w in words]
        return tokens

    def decode(self, tokens: np.ndarray) -> list[str]:
        """Token rows back to prompts (without <start> and padding)."""
        return [" ".join(self.words[i] for i in row if i > 1) for row in np.asarray(tokens)]


def make_tokenizer() -> PromptTokenizer:
    """The tokenizer over every class phrase."""
    return PromptTokenizer([p for phrases in CLASS_PHRASES for p in phrases])


class PromptEncoder(nn.Module):
    """Token ids (N, S) -> token features (N, S, dims) and the mask (N, S), True where a
    real token is: a learned embedding per word plus one per position, then LayerNorm.
    The role CLIP's (or T5's) text transformer plays in Stable Diffusion (or Imagen)."""

    def __init__(self, vocabulary_size: int, context_length: int, dims: int = PROMPT_DIMS):
        super().__init__()
        self.context_length, self.dims = context_length, dims
        self.token_embedding = nn.Embedding(vocabulary_size, dims)
        self.position_embedding = nn.Embedding(context_length, dims)
        self.norm = nn.LayerNorm(dims)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        if tokens.ndim != 2 or tokens.shape[1] != self.context_length:
            raise ValueError(f"PromptEncoder: expected token ids (N, {self.context_length}), "
                             f"got shape {tokens.shape}")
        xp = backend.get_array_module(tokens.data)
        positions = Tensor(xp.arange(self.context_length), device=tokens.device)
        features = self.token_embedding(tokens) + self.position_embedding(positions)
        return self.norm(features), tokens != 0


# ---------------------------------------------------------------- cross-attention


class CrossAttention(nn.Module):
    """Image features attend to prompt tokens, with a residual connection:

        h (N, C, H, W) -> tokens t (N, HW, C);  Q = LayerNorm(t) W_q^T,
        K = c W_k^T, V = c W_v^T (c: (N, S, context_dims));  per head
        out = softmax(Q K^T / sqrt(C / heads), padded keys -inf) V;  h + out W_o^T + b_o

    mask: (N, S) bool, True for a real token. Each row of the weights sums to 1 over the
    real tokens; a padded token gets weight exactly 0 (exp(-inf)). Returns (h', weights
    (N, heads, HW, S))."""

    def __init__(self, channels: int, context_dims: int, heads: int = HEADS):
        super().__init__()
        if channels % heads:
            raise ValueError(f"CrossAttention: channels ({channels}) must be a multiple of "
                             f"heads ({heads})")
        self.channels, self.context_dims, self.heads = channels, context_dims, heads
        self.norm = nn.LayerNorm(channels)
        self.to_query = nn.Linear(channels, channels, bias=False)
        self.to_key = nn.Linear(context_dims, channels, bias=False)
        self.to_value = nn.Linear(context_dims, channels, bias=False)
        self.out = nn.Linear(channels, channels)

    def forward(self, h: Tensor, context: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        n, c, height, width = h.shape
        if c != self.channels or context.ndim != 3 or context.shape[0] != n \
                or context.shape[2] != self.context_dims:
            raise ValueError(f"CrossAttention: expected h (N, {self.channels}, H, W) and "
                             f"context (N, S, {self.context_dims}), got {h.shape} and "
                             f"{context.shape}")
        if tuple(mask.shape) != tuple(context.shape[:2]):
            raise ValueError(f"CrossAttention: mask must have shape {context.shape[:2]}, "
                             f"got {mask.shape}")
        heads, head_dims, length = self.heads, c // self.heads, context.shape[1]
        tokens = h.reshape(n, c, height * width).transpose(1, 2)  # (N, HW, C)

        def split_heads(x: Tensor, size: int) -> Tensor:  # (N, T, C) -> (N, heads, T, C / h)
            return x.reshape(n, size, heads, head_dims).transpose(1, 2)

        q = split_heads(self.to_query(self.norm(tokens)), height * width)
        k = split_heads(self.to_key(context), length)
        v = split_heads(self.to_value(context), length)
        out, weights = attention(q, k, v, attn_mask=mask.reshape(n, 1, 1, length))
        out = self.out(out.transpose(1, 2).reshape(n, height * width, c))
        return h + out.transpose(1, 2).reshape(n, c, height, width), weights


# ---------------------------------------------------------------- the autoencoder


class LatentEncoder(nn.Module):
    """x (N, 1, 32, 32) in [0, 1] -> (mean, log_var) of q(z | x), each (N, 4, 8, 8)."""

    def __init__(self, latent_channels: int = LATENT_SHAPE[0]):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.SiLU(),
            nn.Conv2d(64, 2 * latent_channels, 1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        moments = self.net(x)
        mean, log_var = moments.chunk(2, dim=1)
        return mean, log_var.clamp(-30.0, 20.0)  # Stable Diffusion's clamp


class LatentDecoder(nn.Module):
    """z (N, 4, 8, 8) -> pixel probabilities (N, 1, 32, 32)."""

    def __init__(self, latent_channels: int = LATENT_SHAPE[0]):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(latent_channels, 64, 3, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(16, 1, 3, padding=1), nn.Sigmoid())

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class LatentAutoencoder(nn.Module):
    """The KL-regularised autoencoder: encode to q(z | x), draw z, decode."""

    def __init__(self, latent_channels: int = LATENT_SHAPE[0], kl_weight: float = KL_WEIGHT):
        super().__init__()
        self.encoder = LatentEncoder(latent_channels)
        self.decoder = LatentDecoder(latent_channels)
        self.kl_weight = kl_weight

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mean, log_var = self.encoder(x)
        return self.decoder(reparameterize(mean, log_var)), mean, log_var


def autoencoder_loss(x: Tensor, x_hat: Tensor, mean: Tensor, log_var: Tensor,
                     kl_weight: float = KL_WEIGHT) -> tuple[Tensor, Tensor, Tensor]:
    """BCE(x, x_hat) summed over the pixels + kl_weight KL(q(z|x) || N(0, I)) summed over
    the latent values, both averaged over the batch: (loss, reconstruction, kl)."""
    n = x.shape[0]
    reconstruction = F.binary_cross_entropy(x_hat, x, reduction="sum") / n
    kl = kl_divergence(mean.reshape(n, -1), log_var.reshape(n, -1)).mean()
    return reconstruction + kl_weight * kl, reconstruction, kl


# ---------------------------------------------------------------- the denoiser


class TextConditionedUNet(nn.Module):
    """The prompt encoder and a U-Net on the latent with cross-attention:
    (z_t (N, C, H, W), noise variances (N, 1, 1, 1), tokens (N, S)) -> eps (N, C, H, W).

    Chapter 8's layout with one residual block per level: Conv 1x1 stem and the
    sinusoidal noise embedding (concatenated), down blocks of `widths[:-1]` (each kept as
    a skip, then 2x2 average pooling), a middle block of widths[-1], up blocks (bilinear
    2x, concatenate the skip, residual block); after the residual block of every level in
    attention_levels (0: the input's resolution), a CrossAttention on the prompt."""

    def __init__(self, vocabulary_size: int, context_length: int,
                 channels: int = LATENT_SHAPE[0], widths: tuple[int, ...] = WIDTHS,
                 attention_levels: tuple[int, ...] = ATTENTION_LEVELS,
                 embedding_dims: int = EMBEDDING_DIMS, prompt_dims: int = PROMPT_DIMS,
                 heads: int = HEADS):
        super().__init__()
        if len(widths) < 2 or any(not 0 <= level < len(widths) - 1
                                  for level in attention_levels):
            raise ValueError(f"TextConditionedUNet: need two or more widths and attention "
                             f"levels in 0..{len(widths) - 2}, got {widths}, "
                             f"{attention_levels}")
        self.channels, self.widths = channels, tuple(widths)
        self.attention_levels, self.embedding_dims = tuple(attention_levels), embedding_dims
        self.prompt_encoder = PromptEncoder(vocabulary_size, context_length, prompt_dims)
        self.stem = nn.Conv2d(channels, widths[0], 1)
        c = widths[0] + embedding_dims
        self.down, self.down_attention = nn.ModuleList(), nn.ModuleList()
        for level, width in enumerate(widths[:-1]):
            self.down.append(diffusion.ResidualBlock(c, width))
            self.down_attention.append(self._attention(level, width, prompt_dims, heads))
            c = width
        self.middle = diffusion.ResidualBlock(c, widths[-1])
        c = widths[-1]
        self.up, self.up_attention = nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(len(widths) - 1)):
            self.up.append(diffusion.ResidualBlock(c + widths[level], widths[level]))
            self.up_attention.append(self._attention(level, widths[level], prompt_dims, heads))
            c = widths[level]
        self.head = nn.Conv2d(c, channels, 1)
        nn.init.zeros_(self.head.weight)  # chapter 8's: the first prediction is 0
        nn.init.zeros_(self.head.bias)
        self.pool = nn.AvgPool2d(2)

    def _attention(self, level: int, width: int, prompt_dims: int, heads: int) -> nn.Module:
        if level in self.attention_levels:
            return CrossAttention(width, prompt_dims, heads)
        return nn.Identity()

    def _attend(self, block: nn.Module, h: Tensor, context: Tensor, mask: Tensor,
                name: str, attention_maps: list | None) -> Tensor:
        if isinstance(block, nn.Identity):
            return h
        h, weights = block(h, context, mask)
        if attention_maps is not None:
            attention_maps.append((name, weights))
        return h

    def forward(self, x: Tensor, noise_variance: Tensor, tokens: Tensor,
                attention_maps: list | None = None) -> Tensor:
        """attention_maps: a list that receives (name, weights (N, heads, HW, S)) of every
        cross-attention, for a figure."""
        halvings = len(self.widths) - 1
        if x.ndim != 4 or x.shape[1] != self.channels or \
                any(side % 2 ** halvings for side in x.shape[2:]):
            raise ValueError(f"TextConditionedUNet: expected latents (N, {self.channels}, H, "
                             f"W), H and W multiples of {2 ** halvings}, got {x.shape}")
        context, mask = self.prompt_encoder(tokens)
        n, _, height, width = x.shape
        noise = diffusion.sinusoidal_embedding(noise_variance, self.embedding_dims)
        h = mg.cat([self.stem(x), noise.expand(n, self.embedding_dims, height, width)], dim=1)
        skips = []
        for level, (block, cross) in enumerate(zip(self.down, self.down_attention)):
            h = self._attend(cross, block(h), context, mask, f"down {level}", attention_maps)
            skips.append(h)
            h = self.pool(h)
        h = self.middle(h)
        for i, (block, cross) in enumerate(zip(self.up, self.up_attention)):
            h = F.interpolate(h, scale_factor=2, mode="bilinear")
            h = block(mg.cat([h, skips.pop()], dim=1))
            level = len(self.up) - 1 - i
            h = self._attend(cross, h, context, mask, f"up {level}", attention_maps)
        return self.head(h)


# ---------------------------------------------------------------- the model


class LatentDiffusion(nn.Module):
    """The autoencoder, the denoiser (network) and its EMA twin, the latent scale.

    latent_scale: 1 / std of the training latents (set_latent_scale), so the diffusion
    runs on unit-variance latents; autoencoder_steps counts train_step's first phase."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS,
                 attention_levels: tuple[int, ...] = ATTENTION_LEVELS,
                 embedding_dims: int = EMBEDDING_DIMS, prompt_dims: int = PROMPT_DIMS,
                 heads: int = HEADS, ema_decay: float = EMA_DECAY,
                 kl_weight: float = KL_WEIGHT):
        super().__init__()
        self.tokenizer = make_tokenizer()
        self.schedule = diffusion.OffsetCosineSchedule()
        self.ema_decay = ema_decay
        self.autoencoder = LatentAutoencoder(LATENT_SHAPE[0], kl_weight)
        self.latent_shape = LATENT_SHAPE

        def denoiser() -> TextConditionedUNet:
            return TextConditionedUNet(len(self.tokenizer), self.tokenizer.context_length,
                                       LATENT_SHAPE[0], widths, attention_levels,
                                       embedding_dims, prompt_dims, heads)

        self.network = denoiser()
        self.ema_network = denoiser()
        self.ema_network.load_state_dict(self.network.state_dict())
        self.ema_network.requires_grad_(False)
        self.register_buffer("latent_scale", mg.ones(1))
        self.register_buffer("ema_updates", mg.zeros(1, dtype=mg.int64))
        self.register_buffer("autoencoder_steps", mg.zeros(1, dtype=mg.int64))

    # the EMA with chapter 8's warm-up, on this model's network / ema_network
    current_ema_decay = diffusion.DiffusionModel.current_ema_decay
    update_ema = diffusion.DiffusionModel.update_ema

    def tokens(self, prompts: str | Sequence[str]) -> Tensor:
        """Prompts as token ids (N, S) on the model's device (ValueError on a bad word)."""
        return mg.tensor(self.tokenizer.encode(prompts), device=nn.device_of(self))

    def encode(self, images: Tensor, sample: bool = True) -> Tensor:
        """Images (N, 1, 32, 32) in [0, 1] -> scaled latents (N, 4, 8, 8): a draw of
        q(z | x) (or its mean) times latent_scale."""
        mean, log_var = self.autoencoder.encoder(images)
        z = reparameterize(mean, log_var) if sample else mean
        return z * self.latent_scale

    def decode(self, latents: Tensor) -> Tensor:
        """Scaled latents -> images in [0, 1]."""
        return self.autoencoder.decoder(latents / self.latent_scale)

    def set_latent_scale(self, images: np.ndarray, batch_size: int = 500) -> float:
        """latent_scale = 1 / std of the latents of `images` (N, 1, 32, 32) in [0, 1]
        (Stable Diffusion takes one batch); returns it."""
        device = nn.device_of(self)
        values = []
        with nn.evaluating(self.autoencoder), mg.no_grad():
            for start in range(0, len(images), batch_size):
                batch = mg.tensor(np.asarray(images[start:start + batch_size],
                                             dtype=np.float32), device=device)
                mean, log_var = self.autoencoder.encoder(batch)
                values.append(reparameterize(mean, log_var).numpy())
        scale = 1.0 / float(np.concatenate(values).std(dtype=np.float64))
        self.latent_scale.data[...] = scale
        return scale

    def eps_model(self, tokens: Tensor, guidance: float | None = None,
                  ema: bool = True) -> diffusion.EpsModel:
        """The noise predictor eps_model(z_t, noise_variance) for the samplers: the prompt
        alone (guidance None or 1), the empty prompt alone (0), or guided_eps of both in
        one batch of 2N."""
        network = self.ema_network if ema else self.network
        empty = self.tokens([""] * tokens.shape[0])
        return diffusion.classifier_free(network, tokens, empty, guidance)

    def sample(self, prompts: Sequence[str], guidance: float | None = 3.0,
               steps: int = DDIM_STEPS, seed: int | None = None, progress: bool = True,
               z_T: Tensor | None = None) -> Tensor:
        """One image per prompt, (N, 1, 32, 32) in [0, 1]: DDIM on the latent from the EMA
        denoiser with guidance weight w, then decoded."""
        if isinstance(prompts, str):
            raise TypeError("sample: prompts must be a list of strings, one per image, got "
                            f"the string {prompts!r}")
        tokens = self.tokens(list(prompts))
        shape = (len(prompts), *self.latent_shape)
        with nn.evaluating(self), mg.no_grad():
            z0 = diffusion.ddim_sample(self.eps_model(tokens, guidance), shape, steps,
                                       self.schedule, seed=seed, progress=progress,
                                       device=nn.device_of(self), x_T=z_T)
            return self.decode(z0).clamp(0.0, 1.0)


def make_latent_diffusion(widths: tuple[int, ...] = WIDTHS,
                          attention_levels: tuple[int, ...] = ATTENTION_LEVELS,
                          embedding_dims: int = EMBEDDING_DIMS, prompt_dims: int = PROMPT_DIMS,
                          heads: int = HEADS) -> LatentDiffusion:
    """The miniature text-to-image model (see the module's docstring)."""
    return LatentDiffusion(widths, attention_levels, embedding_dims, prompt_dims, heads)


def make_optimizers(model: LatentDiffusion, lr: float = LR) -> dict[str, Optimizer]:
    """Adam on the autoencoder; chapter 8's AdamW (wd 1e-4) on the denoiser."""
    return {"autoencoder": Adam(model.autoencoder.parameters(), lr=AUTOENCODER_LR),
            "diffusion": AdamW(model.network.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)}


# ---------------------------------------------------------------- training


def prompts_for_labels(labels: np.ndarray, choices: np.ndarray, drops: np.ndarray,
                       dropout: float = PROMPT_DROPOUT) -> list[str]:
    """A training prompt per label: phrase floor(choice * count) of its class's phrases,
    or the empty prompt "" where drop < dropout (classifier-free guidance).
    labels, choices, drops: (N,), choices and drops uniform in [0, 1)."""
    prompts = []
    for label, choice, drop in zip(np.asarray(labels), choices, drops):
        phrases = CLASS_PHRASES[int(label)]
        prompts.append("" if drop < dropout else phrases[int(choice * len(phrases))])
    return prompts


def autoencoder_train_step(model: LatentDiffusion, optimizers: dict[str, Optimizer],
                           images: Tensor, labels: Tensor | None = None) -> dict[str, float]:
    """One Adam step on autoencoder_loss; images (N, 1, 32, 32) in [0, 1]."""
    x_hat, mean, log_var = model.autoencoder(images)
    loss, reconstruction, kl = autoencoder_loss(images, x_hat, mean, log_var,
                                                model.autoencoder.kl_weight)
    optimizer = optimizers["autoencoder"]
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    model.autoencoder_steps.data[...] += 1
    with mg.no_grad():
        values = mg.stack([loss, reconstruction, kl]).tolist()
    return dict(zip(["autoencoder loss", "reconstruction", "kl"], values))


def diffusion_train_step(model: LatentDiffusion, optimizers: dict[str, Optimizer],
                         images: Tensor, labels: Tensor, noise: Tensor | None = None,
                         t: Tensor | None = None) -> dict[str, float]:
    """One step of chapter 8's loss on the frozen encoder's scaled latents, each image
    with a prompt of its class (or the empty one, PROMPT_DROPOUT of the time); then the
    EMA follows. noise (N, 4, 8, 8) and t (N, 1, 1, 1) replace those draws when given."""
    with mg.no_grad(), nn.evaluating(model.autoencoder):
        z0 = model.encode(images)
    n, device = z0.shape[0], z0.device
    choices, drops = mg.rand(2, n).numpy()  # minigen's generator: mg.manual_seed repeats it
    tokens = model.tokens(prompts_for_labels(labels.numpy(), choices, drops))
    if noise is None:
        noise = mg.randn(*z0.shape, dtype=z0.dtype, device=device)
    if t is None:
        t = mg.rand(n, 1, 1, 1, dtype=z0.dtype, device=device)
    noise_rates, signal_rates = model.schedule.rates(t.data)
    z_t = diffusion.q_sample(z0, noise, Tensor(noise_rates), Tensor(signal_rates))
    predicted = model.network(z_t, Tensor(noise_rates * noise_rates), tokens)
    loss = (noise - predicted).abs().mean()
    optimizer = optimizers["diffusion"]
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    model.update_ema()
    return {"loss": loss.item()}


def train_step(model: LatentDiffusion, optimizers: dict[str, Optimizer], images: Tensor,
               labels: Tensor) -> dict[str, float]:
    """The command line's two phases in one step function: the autoencoder for its first
    AUTOENCODER_STEPS steps; at the first diffusion step latent_scale is set from that
    batch (as Stable Diffusion does) and the autoencoder stays frozen from then on."""
    if int(model.autoencoder_steps.data[0]) < AUTOENCODER_STEPS:
        return autoencoder_train_step(model, optimizers, images)
    if int(model.ema_updates.data[0]) == 0:
        model.set_latent_scale(images.numpy())
    return diffusion_train_step(model, optimizers, images, labels)


__all__ = ["CLASS_PHRASES", "CLASS_PROMPTS", "CrossAttention", "LatentAutoencoder",
           "LatentDecoder", "LatentDiffusion", "LatentEncoder", "PromptEncoder",
           "PromptTokenizer", "TextConditionedUNet", "autoencoder_loss",
           "autoencoder_train_step", "diffusion_train_step", "make_latent_diffusion",
           "make_optimizers", "make_tokenizer", "prompts_for_labels", "train_step"]
