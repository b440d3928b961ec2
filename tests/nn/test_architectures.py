"""The architecture builders: structure, counts (hand / Keras closed forms), torch oracles."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import steadygrad as sg
from steadygrad.errors import ConfigError
from steadygrad.nn.resnet import BasicBlock
from steadygrad.nn.transformer import EncoderBlock, sinusoid_table

# ---------------------------------------------------------------- parameter counts


def keras_conv2d(k: int, c_in: int, c_out: int, bias: bool = True) -> int:
    """Keras Conv2D: (k*k*c_in + 1) * filters."""
    return (k * k * c_in + int(bias)) * c_out


def keras_dense(n_in: int, n_out: int) -> int:
    return (n_in + 1) * n_out


def keras_bn(c: int) -> tuple[int, int]:
    """Keras BatchNormalization: gamma, beta trainable; moving mean/var non-trainable."""
    return 2 * c, 2 * c


def test_cnn_counts_match_keras_conv2d_dense_and_batch_norm() -> None:
    net = sg.cnn((3, 16, 16), (8, 16), normalization="before", dense=(32,),
                 num_outputs=10, seed=0)
    s = sg.summary(net, (3, 16, 16))
    bn_t, bn_nt = keras_bn(8)
    bn2_t, bn2_nt = keras_bn(16)
    # convs followed by BN have no bias (Keras: use_bias=False)
    trainable = (keras_conv2d(3, 3, 8, bias=False) + bn_t + keras_conv2d(3, 8, 16, bias=False)
                 + bn2_t + keras_dense(16, 32) + keras_dense(32, 10))
    assert s.trainable_params == trainable
    assert s.non_trainable_params == bn_nt + bn2_nt
    net = sg.cnn((1, 8, 8), (4,), pool="none", head="flatten", num_outputs=3, seed=0)
    assert sg.summary(net, (1, 8, 8)).total_params == keras_conv2d(3, 1, 4) + keras_dense(256, 3)
    assert [r.output_shape for r in sg.summary(net, (1, 8, 8)).rows][-1] == (None, 3)


def test_resnet_counts_by_hand() -> None:
    net = sg.resnet((3, 8, 8), stages=(4, 8), blocks_per_stage=1, num_outputs=10, seed=0)
    bn = 4  # per channel: gamma, beta (trainable) + running mean, var
    stem = 9 * 3 * 4 + bn * 4
    block1 = 2 * (9 * 4 * 4 + bn * 4)  # identity shortcut
    block2 = 9 * 4 * 8 + bn * 8 + 9 * 8 * 8 + bn * 8 + (4 * 8 + bn * 8)  # 1x1 projection
    head = 8 * 10 + 10
    s = sg.summary(net, (3, 8, 8))
    assert s.total_params == stem + block1 + block2 + head
    assert s.non_trainable_params == 2 * (4 + 4 + 4 + 8 + 8 + 8)
    assert s.rows[-1].output_shape == (None, 10)
    # the second stage halves the resolution
    shapes = {r.path: r.output_shape for r in s.rows}
    assert shapes["stage2.block1.act2"] == (None, 8, 4, 4)


@pytest.mark.parametrize(("cell", "gates"), [("rnn", 1), ("gru", 3), ("lstm", 4)])
def test_recurrent_counts_torch_two_biases_vs_keras_one(cell: str, gates: int) -> None:
    f, h = 5, 7
    net = sg.rnn((9, f), h, cell=cell, num_outputs=3, seed=0)
    n = sum(p.numel() for p in net.rnn.parameters())
    assert n == gates * (h * f + h * h + 2 * h)  # torch: bias_ih and bias_hh
    keras = {"rnn": h * f + h * h + h,  # SimpleRNN: one bias
             "lstm": 4 * (h * f + h * h + h),  # LSTM: one bias
             "gru": 3 * (h * f + h * h + 2 * h)}[cell]  # GRU reset_after=True: two biases
    assert n - keras == {"rnn": h, "lstm": 4 * h, "gru": 0}[cell]
    assert sg.summary(net, (9, f)).total_params == n + keras_dense(h, 3)


def test_transformer_counts_equal_torch_encoder_layer_and_keras_attention() -> None:
    d, ff, heads = 16, 32, 4
    net = sg.transformer((6,), vocab=11, d_model=d, heads=heads, layers=2, ff=ff,
                         num_outputs=5, seed=0)
    torch_layer = nn.TransformerEncoderLayer(d, heads, ff, batch_first=True)
    per_block = sum(p.numel() for p in torch_layer.parameters())
    # Keras MultiHeadAttention(key_dim=d/heads): Q, K, V, output dense, each d*d + d
    keras_mha = 4 * (d * d + d)
    assert per_block == keras_mha + keras_dense(d, ff) + keras_dense(ff, d) + 2 * 2 * d
    expected = 11 * d + 6 * d + 2 * per_block + 2 * d + keras_dense(d, 5)  # + final LN
    assert sg.summary(net, (6,)).total_params == expected


# ---------------------------------------------------------------- torch oracles


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_block_computes_torch_transformer_encoder_layer(norm_first: bool) -> None:
    d, heads, ff = 8, 2, 16
    ours = EncoderBlock(d, heads, ff, nn.ReLU(), norm_first=norm_first)
    ref = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True,
                                     norm_first=norm_first)
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(ours.self_attn.in_proj.weight)
        ref.self_attn.in_proj_bias.copy_(ours.self_attn.in_proj.bias)
        ref.self_attn.out_proj.weight.copy_(ours.self_attn.out_proj.weight)
        ref.self_attn.out_proj.bias.copy_(ours.self_attn.out_proj.bias)
        for name in ("linear1", "linear2", "norm1", "norm2"):
            for p_ref, p_ours in zip(getattr(ref, name).parameters(),
                                     getattr(ours, name).parameters(), strict=True):
                p_ref.copy_(p_ours + 0.1 * torch.randn_like(p_ours) if "norm" in name else p_ours)
                p_ours.copy_(p_ref)
    x = torch.randn(3, 5, d)
    ours.train()
    ref.train()  # the training path (no fused kernel)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
    # the same module names as torch's layer (rewrites and users address them)
    names = {n for n, _ in ref.named_children()} - {"activation"}
    assert names <= {n for n, _ in ours.named_children()}


def test_flipping_norm_first_switches_post_ln_to_pre_ln() -> None:
    post = sg.transformer((5, 3), d_model=8, heads=2, layers=1, ff=16, norm_first=False,
                          output="regression", seed=0)
    pre = sg.transformer((5, 3), d_model=8, heads=2, layers=1, ff=16, norm_first=True,
                         output="regression", seed=0)
    x = torch.randn(4, 5, 3)
    post.block1.norm_first = True
    post_state = {k: v for k, v in post.state_dict().items()}
    pre.load_state_dict(post_state, strict=False)  # pre has an extra final LayerNorm
    with torch.no_grad():
        y_pre = pre.output(pre.pool(pre.block1(pre.positions(pre.input_proj(x)))))
        y_post = post(x)
    torch.testing.assert_close(y_post, y_pre)


def test_sinusoidal_table_is_vaswani() -> None:
    table = sinusoid_table(7, 6)
    t, i = 5, 1
    assert math.isclose(float(table[t, 2 * i]), math.sin(t / 10000 ** (2 * i / 6)), rel_tol=1e-5)
    assert math.isclose(float(table[t, 2 * i + 1]), math.cos(t / 10000 ** (2 * i / 6)),
                        rel_tol=1e-5)
    net = sg.transformer((7, 2), d_model=6, heads=2, layers=1, ff=8, positions="sinusoidal",
                         output="regression", seed=0)
    assert "positions.table" not in net.state_dict()  # fixed, not a weight


def test_basic_block_is_torchvision_semantics() -> None:
    net = sg.resnet((2, 4, 4), stages=(2, 3), blocks_per_stage=1, num_outputs=2, seed=0).eval()
    block = net.stage2.block1
    assert isinstance(block, BasicBlock)
    x = torch.randn(3, 2, 4, 4)
    with torch.no_grad():
        y = torch.relu(block.norm1(block.conv1(x)))
        y = block.norm2(block.conv2(y))
        expected = torch.relu(y + block.shortcut.norm(block.shortcut.conv(x)))
        torch.testing.assert_close(block(x), expected)
    assert block.conv1.stride == (2, 2) and block.shortcut.conv.kernel_size == (1, 1)
    assert block.conv1.bias is None  # BN follows
    plain = sg.resnet((2, 4, 4), stages=(2,), blocks_per_stage=1, normalization="none",
                      num_outputs=2, seed=0)
    assert plain.stage1.block1.norm1 is None and plain.stage1.block1.conv1.bias is not None
    zero = sg.resnet((2, 4, 4), stages=(2,), blocks_per_stage=1, zero_init_residual=True,
                     num_outputs=2, seed=0).eval()
    b = zero.stage1.block1
    with torch.no_grad():  # each block starts as relu(identity)
        h = torch.relu(torch.randn(3, 2, 4, 4))
        torch.testing.assert_close(b(h), h)


# ---------------------------------------------------------------- initialization (Keras)


def test_lstm_initialization_is_keras() -> None:
    h, f = 16, 5
    net = sg.rnn((4, f), h, cell="lstm", num_outputs=2, seed=0)
    w_hh = net.rnn.weight_hh_l0.detach()  # (4h, h): orthogonal columns
    torch.testing.assert_close(w_hh.T @ w_hh, torch.eye(h), atol=1e-5, rtol=0)
    limit = math.sqrt(6 / (f + 4 * h))  # Glorot uniform over the (f, 4h) kernel
    w_ih = net.rnn.weight_ih_l0.detach()
    assert float(w_ih.abs().max()) <= limit
    assert float(w_ih.abs().max()) > 0.9 * limit
    bias = (net.rnn.bias_ih_l0 + net.rnn.bias_hh_l0).detach()  # Keras's single bias
    assert torch.equal(bias[h:2 * h], torch.ones(h))
    assert torch.equal(torch.cat([bias[:h], bias[2 * h:]]), torch.zeros(3 * h))


def test_auto_initializer_follows_activation_in_conv_blocks() -> None:
    net = sg.cnn((3, 32, 32), (256,), activation="selu", pool="none", num_outputs=2, seed=0)
    std = float(net.conv1.weight.detach().std())
    assert math.isclose(std, math.sqrt(1 / 27), rel_tol=0.05)  # LeCun normal for SELU
    net = sg.cnn((3, 32, 32), (256,), activation="relu", pool="none", num_outputs=2, seed=0)
    assert math.isclose(float(net.conv1.weight.detach().std()), math.sqrt(2 / 27), rel_tol=0.05)


@pytest.mark.parametrize("build", [
    lambda s: sg.cnn((1, 8, 8), (4,), num_outputs=3, seed=s),
    lambda s: sg.resnet((1, 8, 8), (4,), 1, num_outputs=3, seed=s),
    lambda s: sg.rnn((5,), 4, vocab=6, num_outputs=3, seed=s),
    lambda s: sg.transformer((5, 2), d_model=4, heads=2, layers=1, ff=8, num_outputs=3, seed=s),
], ids=["cnn", "resnet", "rnn", "transformer"])
def test_seeded_builds_are_reproducible_and_leave_the_global_rng(build) -> None:
    state = torch.random.get_rng_state()
    a, b, c = build(0), build(0), build(1)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (na, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), na
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.state_dict().values(),
                                                         c.state_dict().values(), strict=True))


# ---------------------------------------------------------------- options and errors


def test_shared_options_reach_every_layer() -> None:
    from steadygrad.nn import constraints, regularizers

    for net in (
        sg.cnn((1, 8, 8), (4,), dense=(8,), l2=1e-3, max_norm=2.0, num_outputs=2, seed=0),
        sg.resnet((1, 8, 8), (4,), 1, l2=1e-3, max_norm=2.0, num_outputs=2, seed=0),
        sg.transformer((4, 2), d_model=4, heads=1, layers=1, ff=8, l2=1e-3, max_norm=2.0,
                       num_outputs=2, seed=0),
    ):
        layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        assert all(m.kernel_regularizer.l2 == 1e-3 for m in layers)
        assert all(m.kernel_constraint.max_value == 2.0 for m in layers)
        expected = sum(1e-3 * float(m.weight.detach().pow(2).sum()) for m in layers)
        assert math.isclose(float(regularizers.penalty(net).detach()), expected, rel_tol=1e-5)
        with torch.no_grad():
            for m in layers:
                m.weight.mul_(100)
        constraints.apply_(net)
        assert all(float(m.weight.detach().flatten(1).norm(dim=1).max()) <= 2.0 + 1e-4
                   for m in layers)
    net = sg.cnn((1, 8, 8), (4,), normalization="after", norm="layer", dropout=0.2,
                 dropout_kind="mc", num_outputs=2, seed=0)
    kinds = [type(m).__name__ for _, m in net.named_children()]
    assert kinds[:5] == ["Conv2d", "ReLU", "GroupNorm", "MaxPool2d", "MCDropout"]


@pytest.mark.parametrize(("call", "message"), [
    (lambda: sg.cnn((64,), num_outputs=2), "input_shape: got (64,); expected (C, H, W)"),
    (lambda: sg.cnn((1, 8, 8), (4,), kernel_size=2, num_outputs=2), "kernel_size: got 2"),
    (lambda: sg.cnn((1, 8, 8), (4,), pool="maxx", num_outputs=2),
     "pool: got 'maxx'; expected one of max, avg, none"),
    (lambda: sg.resnet((1, 8, 8), normalization="after", num_outputs=2),
     "normalization: got 'after'; expected one of before, none"),
    (lambda: sg.resnet((1, 8, 8), (4, 8), blocks_per_stage=(1,), num_outputs=2),
     "blocks_per_stage: got (1,); expected an int or one int per stage (2 values)"),
    (lambda: sg.rnn((5,), 4, cell="lstn", num_outputs=2),
     "input_shape: got (5,); expected (T, F) for feature sequences"),
    (lambda: sg.rnn((5, 2), 4, cell="lstn", num_outputs=2), "cell: got 'lstn'"),
    (lambda: sg.transformer((5, 2), d_model=6, heads=4, num_outputs=2),
     "d_model: got 6; expected a multiple of heads=4"),
    (lambda: sg.transformer((5, 2), positions="rope", num_outputs=2),
     "positions: got 'rope'; expected one of learned, sinusoidal"),
    (lambda: sg.transformer((5, 2)), "num_outputs: got None"),
])
def test_bad_arguments_name_the_field(call, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        call()
    assert message in str(err.value)


def test_token_models_embed_float_ids() -> None:
    net = sg.rnn((4,), 6, cell="gru", vocab=5, embedding_dim=3, num_outputs=2, seed=0)
    x = torch.tensor([[0.0, 1.0, 4.0, 2.0]])
    emb = net.embedding.weight.detach()[[0, 1, 4, 2]]
    torch.testing.assert_close(net.embedding(x)[0], emb)
    assert float(emb.abs().max()) <= 0.05  # Keras Embedding: uniform(-0.05, 0.05)
