"""Denoisers: a bidirectional transformer and a tree-matched 1-D convolutional U-Net.

Both map ``(tokens (B,d) long, time (B,) float in [0,1] or None) -> logits (B,d,v)``.
The time is used only when the model is built with ``time_conditioned=True`` (D3PM).

>>> import torch
>>> net = Transformer(input_vocab=5, v=4, d=8, width=32, depth=1, heads=2)
>>> net(torch.zeros(3, 8, dtype=torch.long), None).shape
torch.Size([3, 8, 4])
>>> unet = TreeUNet(input_vocab=5, v=4, s=2, L=3, width=16, depth=1)
>>> unet(torch.zeros(3, 8, dtype=torch.long), None).shape
torch.Size([3, 8, 4])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def time_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of a time in [0,1] (``(B,) -> (B, dim)``)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / max(half, 1))
    ang = 1000.0 * t.float()[:, None] * freqs[None, :]
    out = torch.cat([torch.sin(ang), torch.cos(ang)], -1)
    return F.pad(out, (0, dim - out.shape[-1]))


class TimeEmbedding(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(time_features(t, self.width))


class Block(nn.Module):
    """Pre-LayerNorm transformer block with full (bidirectional) attention."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        # no bias: a key bias has an exactly zero gradient (softmax is shift invariant), which
        # Adam would turn into rounding-noise-driven steps
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, d, w = h.shape
        q, k, v = self.qkv(self.ln1(h)).view(B, d, 3, self.heads, w // self.heads).unbind(2)
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        h = h + self.proj(a.transpose(1, 2).reshape(B, d, w))
        return h + self.mlp(self.ln2(h))


class Transformer(nn.Module):
    """Bidirectional transformer denoiser with learned position embeddings."""

    def __init__(
        self,
        *,
        input_vocab: int,
        v: int,
        d: int,
        width: int,
        depth: int,
        heads: int,
        time_conditioned: bool = False,
    ) -> None:
        super().__init__()
        self.d = d
        self.tok = nn.Embedding(input_vocab, width)
        self.pos = nn.Parameter(torch.randn(d, width) * 0.02)
        self.time = TimeEmbedding(width) if time_conditioned else None
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, v)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        h = self.tok(x) + self.pos
        if self.time is not None:
            if t is None:
                raise ValueError("this denoiser is time-conditioned: t must be given")
            h = h + self.time(t)[:, None, :]
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.ln(h))


class ResBlock(nn.Module):
    """Position-wise residual MLP on (B, n, C) with an optional per-channel time shift."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 2 * width)
        self.fc2 = nn.Linear(2 * width, width)

    def forward(self, h: torch.Tensor, temb: torch.Tensor | None) -> torch.Tensor:
        z = self.norm(h)
        if temb is not None:
            z = z + temb[:, None, :]
        return h + self.fc2(F.gelu(self.fc1(z)))


class TreeUNet(nn.Module):
    """1-D U-Net matched to the RHM tree: ``L`` down-sampling convolutions with
    kernel = stride = ``s`` (each output position sees exactly one node's block of the
    level below), then ``L`` transposed convolutions back up, with skip connections at
    every level. A kernel = stride convolution is a linear map of each non-overlapping
    block, so it is computed as reshape + ``Linear(s*C, C)`` (and ``Linear(C, s*C)`` +
    reshape for the transposed one): the same function, several times faster on CPUs
    than ``Conv1d`` on such short sequences.
    """

    def __init__(
        self,
        *,
        input_vocab: int,
        v: int,
        s: int,
        L: int,
        width: int,
        depth: int = 1,
        time_conditioned: bool = False,
    ) -> None:
        super().__init__()
        self.s, self.L, self.width = s, L, width
        self.d = s**L
        self.tok = nn.Embedding(input_vocab, width)
        self.pos = nn.Parameter(torch.randn(self.d, width) * 0.02)
        self.time = TimeEmbedding(width) if time_conditioned else None
        self.down_blocks = nn.ModuleList(
            nn.ModuleList(ResBlock(width) for _ in range(depth)) for _ in range(L)
        )
        self.downs = nn.ModuleList(nn.Linear(s * width, width) for _ in range(L))
        self.mid = nn.ModuleList(ResBlock(width) for _ in range(depth))
        self.ups = nn.ModuleList(nn.Linear(width, s * width) for _ in range(L))
        self.merge = nn.ModuleList(nn.Linear(2 * width, width) for _ in range(L))
        self.up_blocks = nn.ModuleList(
            nn.ModuleList(ResBlock(width) for _ in range(depth)) for _ in range(L)
        )
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, v)

    def _temb(self, t: torch.Tensor | None) -> torch.Tensor | None:
        if self.time is None:
            return None
        if t is None:
            raise ValueError("this denoiser is time-conditioned: t must be given")
        return self.time(t)

    def encode(
        self, x: torch.Tensor, t: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Skip features per level (length ``s**(L-l)``, finest first) and the root
        feature ``(B, 1, C)``: level-l position j depends only on block j's tokens."""
        temb = self._temb(t)
        h = self.tok(x) + self.pos  # (B, n, C)
        skips = []
        for blocks, down in zip(self.down_blocks, self.downs, strict=True):
            for blk in blocks:  # type: ignore[attr-defined]
                h = blk(h, temb)
            skips.append(h)
            B, n, C = h.shape
            h = down(F.gelu(h).reshape(B, n // self.s, self.s * C))
        return skips, h

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        temb = self._temb(t)
        skips, h = self.encode(x, t)
        for blk in self.mid:
            h = blk(h, temb)
        for up, merge, blocks in zip(self.ups, self.merge, self.up_blocks, strict=True):
            B, n, C = h.shape
            h = up(F.gelu(h)).reshape(B, n * self.s, C)
            h = merge(torch.cat([h, skips.pop()], -1))
            for blk in blocks:  # type: ignore[attr-defined]
                h = blk(h, temb)
        return self.head(F.gelu(self.norm(h)))


def build_model(
    kind: str,
    *,
    input_vocab: int,
    v: int,
    d: int,
    s: int,
    L: int,
    width: int,
    depth: int,
    heads: int,
    time_conditioned: bool,
) -> nn.Module:
    """The denoiser named by ``kind`` (``"transformer"`` or ``"unet"``)."""
    if kind == "transformer":
        return Transformer(
            input_vocab=input_vocab,
            v=v,
            d=d,
            width=width,
            depth=depth,
            heads=heads,
            time_conditioned=time_conditioned,
        )
    if kind == "unet":
        if d != s**L:
            raise ValueError(f"model = 'unet' needs strings of length s**L = {s**L}; got d = {d}")
        return TreeUNet(
            input_vocab=input_vocab,
            v=v,
            s=s,
            L=L,
            width=width,
            depth=depth,
            time_conditioned=time_conditioned,
        )
    raise ValueError(f"model = {kind!r}: must be 'transformer' or 'unet'")


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_flops_per_string(model: nn.Module, d: int, *, time_conditioned: bool) -> float:
    """Forward FLOPs per string, counted by torch's FlopCounterMode (matmuls, convs,
    attention); training costs about three times this."""
    from torch.utils.flop_counter import FlopCounterMode

    dev = next(model.parameters()).device
    x = torch.zeros(4, d, dtype=torch.long, device=dev)
    t = torch.full((4,), 0.5, device=dev) if time_conditioned else None
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, t)
    return counter.get_total_flops() / 4.0
