"""Denoisers and checkpoints."""

from __future__ import annotations

import pickle

import pytest
import torch

from rhmfast.diffusion import checkpoint as ckpt
from rhmfast.diffusion.models import Transformer, TreeUNet, build_model, forward_flops_per_string

torch.set_num_threads(1)


def test_transformer_is_bidirectional():
    torch.manual_seed(0)
    net = Transformer(input_vocab=5, v=4, d=8, width=32, depth=2, heads=4).eval()
    x = torch.zeros(1, 8, dtype=torch.long)
    y = x.clone()
    y[0, 7] = 3
    out_x, out_y = net(x, None), net(y, None)
    assert out_x.shape == (1, 8, 4)
    assert not torch.allclose(out_x[0, 0], out_y[0, 0])  # the first position sees the last


def test_unet_is_tree_matched():
    torch.manual_seed(0)
    s, L = 3, 2
    net = TreeUNet(input_vocab=5, v=4, s=s, L=L, width=8, depth=1).eval()
    x = torch.randint(0, 4, (1, 9))
    out = net(x, None)
    assert out.shape == (1, 9, 4)
    skips, root = net.encode(x)
    assert [h.shape[1] for h in skips] == [9, 3] and root.shape[1] == 1
    for i in range(9):  # change token i: level-l features change only in block i // s**l
        y = x.clone()
        y[0, i] = (y[0, i] + 1) % 4
        skips_y, _ = net.encode(y)
        for level, (a, b) in enumerate(zip(skips, skips_y, strict=True)):
            changed = (a - b).abs().amax(-1)[0] > 0
            assert changed.nonzero().flatten().tolist() == [i // s**level]
    with pytest.raises(ValueError, match="s\\*\\*L"):
        build_model(
            "unet",
            input_vocab=5,
            v=4,
            d=8,
            s=3,
            L=2,
            width=8,
            depth=1,
            heads=1,
            time_conditioned=False,
        )


@pytest.mark.parametrize("kind", ["transformer", "unet"])
def test_time_conditioning(kind):
    torch.manual_seed(0)
    net = build_model(
        kind, input_vocab=4, v=4, d=8, s=2, L=3, width=16, depth=1, heads=2, time_conditioned=True
    )
    x = torch.randint(0, 4, (2, 8))
    a = net(x, torch.tensor([0.1, 0.1]))
    b = net(x, torch.tensor([0.9, 0.9]))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="time-conditioned"):
        net(x, None)


def test_flop_count_scales_with_model_size():
    small = Transformer(input_vocab=5, v=4, d=16, width=32, depth=1, heads=2)
    big = Transformer(input_vocab=5, v=4, d=16, width=32, depth=4, heads=2)
    fs, fb = (forward_flops_per_string(m, 16, time_conditioned=False) for m in (small, big))
    # one block: qkv + proj + mlp = 12 w^2 weights -> 24 w^2 d flops, plus attention 4 d^2 w
    per_block = 24 * 32 * 32 * 16 + 4 * 16 * 16 * 32
    assert fb - fs == pytest.approx(3 * per_block, rel=0.01)


# ---------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(tmp_path):
    state = {"step": 5, "w": torch.arange(6.0).view(2, 3), "nested": {"a": [1, 2.5, "x"]}}
    path = ckpt.step_path(tmp_path, 5)
    ckpt.save_checkpoint(path, state)
    back = ckpt.load_checkpoint(path)
    assert (
        back["step"] == 5
        and torch.equal(back["w"], state["w"])
        and back["nested"] == state["nested"]
    )
    assert [p.name for p in tmp_path.iterdir()] == ["step_00000005.pt"]  # no temp file left


def test_truncated_and_altered_checkpoints_are_detected(tmp_path):
    path = tmp_path / "step_00000001.pt"
    ckpt.save_checkpoint(path, {"step": 1, "w": torch.ones(1000)})
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ckpt.CorruptCheckpoint):
        ckpt.load_checkpoint(path)
    # flip one byte inside the stored weights: the zip may still read, the digest must not
    ckpt.save_checkpoint(path, {"step": 1, "w": torch.ones(1000)})
    raw = bytearray(path.read_bytes())
    pos = raw.find(b"\x00\x00\x80\x3f" * 4)  # float32 ones inside the payload
    assert pos > 0
    raw[pos + 1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ckpt.CorruptCheckpoint):
        ckpt.load_checkpoint(path)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "step_00000001.pt"
    torch.save({"format": ckpt.FORMAT, "x": Evil()}, path, pickle_module=pickle)
    with pytest.raises(ckpt.CorruptCheckpoint):
        ckpt.load_checkpoint(path)
    assert "pwned" not in capsys.readouterr().out


def test_load_latest_falls_back_past_corrupt_files(tmp_path):
    for s in (1, 2, 3):
        ckpt.save_checkpoint(ckpt.step_path(tmp_path, s), {"step": s})
    ckpt.step_path(tmp_path, 3).write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="falling back"):
        assert ckpt.load_latest(tmp_path)["step"] == 2
    extra = tmp_path / "resume.pt"
    ckpt.save_checkpoint(extra, {"step": 7})
    assert ckpt.load_latest(tmp_path, extra=[extra])["step"] == 7
    ckpt.save_checkpoint(extra, {"step": 1})
    with pytest.warns(UserWarning):
        assert ckpt.load_latest(tmp_path, extra=[extra])["step"] == 2
    assert ckpt.load_latest(tmp_path / "none") is None
