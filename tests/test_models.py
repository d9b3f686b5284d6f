"""The report's models against the spec's numbers (written here, never recomputed), and the
contract every registered model keeps."""

import math

import pytest
import torch
import torch.nn as nn

from facesketch.models.info import model_info
from facesketch.registry import create_model, list_models, model_spec

# ../shared/spec/seed-system.md section 2 (Keras "trainable" and BatchNorm moving statistics)
SPEC_PARAMS = {"dense_ae": (425_086_880, 0), "conv_ae": (9_784_491, 1_856), "hybrid_ae": (1_470_779, 2_000)}


@pytest.mark.parametrize("name", sorted(SPEC_PARAMS))
def test_parameter_counts_match_the_spec(name):
    info = model_info(name)
    assert (info["trainable_params"], info["non_trainable"]) == SPEC_PARAMS[name]


def _block_shapes(model, blocks, size):
    shapes = []
    hooks = [b.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))) for b in blocks]
    model.eval()
    with torch.no_grad():
        model(torch.rand(1, 3, size, size))
    for h in hooks:
        h.remove()
    return shapes


def test_conv_ae_block_shapes_and_params():
    m = create_model("conv_ae")
    shapes = _block_shapes(m, list(m.blocks), 256)
    z = torch.zeros(1, *shapes[-1])
    for conv in m.head:                       # forward() runs the head as one conv (test below)
        z = conv(z)
        shapes.append(tuple(z.shape[1:]))
    hw = [127, 62, 30, 14, 6, 2, 6, 14, 30, 62, 126, 254, 255, 256]
    ch = [16, 32, 64, 128, 256, 512, 512, 256, 128, 64, 32, 16, 8, 3]
    assert shapes == [(c, s, s) for c, s in zip(ch, hw)]
    keras_total = [768, 8320, 32768, 131584, 525312, 2099200, 4194304, 2097152, 524288, 131072, 32768, 8192, 520, 99]
    got = [sum(p.numel() for p in b.parameters()) + sum(x.numel() for n, x in b.named_buffers() if "running" in n)
           for b in list(m.blocks) + list(m.head)]
    assert got == keras_total


def test_hybrid_ae_block_shapes_and_params():
    m = create_model("hybrid_ae")
    shapes = _block_shapes(m, list(m.encoder) + [m.fc1, m.fc2] + list(m.decoder[:5]), 256)
    # Keras' decoder blocks end with their 2x upsampling: (16, 8, 8) ... (256, 128, 128). Here each
    # block stops before it and the next UpConvT upsamples inside its conv (the test below checks
    # that the whole decoder is the Keras one), so the blocks end at half the spec's resolution.
    assert shapes == [(256, 128, 128), (128, 64, 64), (64, 32, 32), (32, 16, 16), (16, 8, 8), (8, 4, 4), (512,), (128,),
                      (16, 4, 4), (32, 8, 8), (64, 16, 16), (128, 32, 32), (256, 64, 64)]
    total = lambda mod: sum(p.numel() for p in mod.parameters()) + sum(
        x.numel() for n, x in mod.named_buffers() if "running" in n)
    assert [total(b) for b in m.encoder] == [20480, 295552, 74048, 18592, 4688, 1192]
    assert [total(m.fc1), total(m.fc2)] == [66048, 65664]
    assert [total(b) for b in m.decoder[:5]] == [1232, 4768, 18752, 74368, 820480]
    assert total(m.decoder[5:]) == 6915


def test_dense_ae_layer_widths():
    with torch.device("meta"):
        m = create_model("dense_ae")
    linears = [l for l in m.net if isinstance(l, nn.Linear)]
    # report Fig. 5, 'Param #' column
    assert [l.weight.numel() + l.bias.numel() for l in linears] == [
        201330688, 8390656, 2098176, 524800, 131328, 32896, 8256, 2080, 2112, 8320, 33024, 131584, 525312,
        2099200, 8392704, 201375744]
    assert isinstance(m.net[-1], nn.Sigmoid)


def test_keras_defaults_are_reproduced():
    torch.manual_seed(0)
    m = create_model("conv_ae")
    bns = [x for x in m.modules() if isinstance(x, nn.BatchNorm2d)]
    assert all(b.momentum == 0.01 and b.eps == 1e-3 for b in bns)
    assert all(a.negative_slope == 0.3 for a in m.modules() if isinstance(a, nn.LeakyReLU))
    assert all(d.p == 0.1 for d in m.modules() if isinstance(d, nn.Dropout))
    w = m.blocks[3][0].weight  # Conv2D 64 -> 128, 4x4: fan_in 1024
    std = math.sqrt(2 / 1024)
    assert abs(w.std().item() / std - 1) < 0.03          # truncated normal, rescaled to the asked std
    assert w.abs().max().item() <= 2 * std / 0.87962566103423978 + 1e-6  # cut at 2 (pre-rescale) std
    lin = create_model("hybrid_ae").fc1                   # glorot uniform 128 -> 512
    assert lin.weight.abs().max().item() <= math.sqrt(6 / (128 + 512)) + 1e-6 and lin.bias.abs().sum() == 0


@pytest.mark.parametrize("name", [n for n in list_models() if n != "dense_ae"] + ["dense_ae"])
def test_every_model_keeps_the_contract(name):
    torch.manual_seed(0)
    model = create_model(name)
    x = torch.rand(2, 3, model.image_size, model.image_size)
    y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    if name in ("dense_ae", "unet", "grey", "pencil", "mean"):
        assert 0 <= y.min() and y.max() <= 1
    if model_spec(name).learned:
        y.mean().backward()
        assert all(p.grad is not None for p in model.parameters())
    else:
        assert sum(p.numel() for p in model.parameters()) == 0


def test_unknown_model_lists_choices():
    with pytest.raises(KeyError, match="unknown model 'nope'; choose from conv_ae, dense_ae"):
        create_model("nope")


def test_baselines_compute_what_they_say():
    x = torch.rand(1, 3, 64, 64)
    grey = create_model("grey")(x)
    assert torch.allclose(grey[0, 0], 0.299 * x[0, 0] + 0.587 * x[0, 1] + 0.114 * x[0, 2], atol=1e-6)
    assert torch.equal(grey[:, 0], grey[:, 2])
    white = create_model("pencil")(torch.ones(1, 3, 64, 64))
    assert torch.allclose(white, torch.ones_like(white))  # dodge of white paper stays white
    flat = create_model("pencil")(torch.full((1, 3, 64, 64), 0.5))
    assert torch.allclose(flat, torch.ones_like(flat))  # colour dodge: 0.5 / (1 - 0.5) -> 1
    mean = create_model("mean", image_size=4)
    targets = torch.rand(5, 3, 4, 4)
    mean.fit(targets)
    out = mean(torch.zeros(2, 3, 4, 4), view=torch.tensor([0, 1]))
    assert torch.allclose(out[0], targets.mean(0)) and torch.allclose(out[1], targets.mean(0).flip(-1))


def test_conv_ae_head_as_one_conv_equals_the_two_transposed_convs():
    """conv_ae runs its two linear 2x2 transposed convs as one 3x3; output and the four head
    parameters' gradients must be those of the two layers run one after the other."""
    torch.manual_seed(0)
    m = create_model("conv_ae")
    for conv in m.head:
        nn.init.normal_(conv.bias)                # non-zero biases, whose border effect differs
    z = torch.randn(2, 16, 20, 20)
    fast, two = m.head_as_one(z), m.head(z)
    assert fast.shape == two.shape == (2, 3, 22, 22)
    assert torch.allclose(fast, two, atol=1e-5)
    target = torch.randn_like(two)
    params = list(m.head.parameters())
    g_fast = torch.autograd.grad(nn.functional.mse_loss(fast, target), params)
    g_two = torch.autograd.grad(nn.functional.mse_loss(two, target), params)
    for a, b in zip(g_fast, g_two, strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)


def _plain_conv_ae(fast: nn.Module) -> nn.Sequential:
    """conv_ae as the spec lists its layers, from plain PyTorch layers (no in-place activation,
    every conv an nn.Conv2d / nn.ConvTranspose2d, the head as two layers) holding `fast`'s
    parameters and BatchNorm statistics."""
    layers = []
    for block in fast.blocks:
        for mod in block:
            if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
                kind = nn.ConvTranspose2d if isinstance(mod, nn.ConvTranspose2d) else nn.Conv2d
                ref = kind(mod.in_channels, mod.out_channels, 4, stride=2, bias=False)
                ref.load_state_dict(mod.state_dict())
            elif isinstance(mod, nn.BatchNorm2d):
                ref = nn.BatchNorm2d(mod.num_features, eps=mod.eps, momentum=mod.momentum)
                ref.load_state_dict(mod.state_dict())
            elif isinstance(mod, nn.LeakyReLU):
                ref = nn.LeakyReLU(mod.negative_slope)
            else:
                ref = nn.Dropout(mod.p)
            layers.append(ref)
    for conv in fast.head:
        ref = nn.ConvTranspose2d(conv.in_channels, conv.out_channels, 2)
        ref.load_state_dict(conv.state_dict())
        layers.append(ref)
    return nn.Sequential(*layers)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_conv_ae_equals_its_plain_layers(layout):
    """conv_ae computes its 2x2 bottleneck as matmuls, its head as one conv and its LeakyReLUs in
    place; in training mode (dropout on, the same random stream) its output, BatchNorm statistics
    and every parameter's gradient must be those of the spec's layers run as plain PyTorch layers."""
    from facesketch.models.conv_ae import MatmulConv2d, MatmulConvTranspose2d
    torch.manual_seed(0)
    fast = create_model("conv_ae").train()
    assert isinstance(fast.blocks[5][0], MatmulConv2d) and isinstance(fast.blocks[6][0], MatmulConvTranspose2d)
    plain = _plain_conv_ae(fast).train()
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    fast, plain = fast.to(memory_format=fmt), plain.to(memory_format=fmt)
    x = torch.rand(2, 3, 256, 256).contiguous(memory_format=fmt)
    torch.manual_seed(1)
    out_fast = fast(x)
    torch.manual_seed(1)
    out_plain = plain(x)
    assert out_plain.abs().max() > 0.1
    assert torch.allclose(out_fast, out_plain, atol=1e-4, rtol=1e-4)
    bns = [(a, b) for a, b in zip([m for m in fast.modules() if isinstance(m, nn.BatchNorm2d)],
                                  [m for m in plain if isinstance(m, nn.BatchNorm2d)], strict=True)]
    for a, b in bns:
        assert torch.allclose(a.running_mean, b.running_mean, atol=1e-5)
        assert torch.allclose(a.running_var, b.running_var, atol=1e-5, rtol=1e-4)
    target = torch.rand_like(out_fast)
    nn.functional.l1_loss(out_fast, target).backward()
    nn.functional.l1_loss(out_plain, target).backward()
    for (name, p), q in zip(fast.named_parameters(), plain.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-5, rtol=1e-3), name


@pytest.mark.parametrize("cin, cout, size", [(6, 5, 2), (4, 3, 5)])
def test_matmul_convs_equal_the_plain_convs(cin, cout, size):
    """The bottleneck's matmul forms against nn.Conv2d / nn.ConvTranspose2d on the same weights:
    outputs and gradients in fp32, and under bf16 autocast as close as the plain layer's bf16 result."""
    from facesketch.models.conv_ae import MatmulConv2d, MatmulConvTranspose2d
    torch.manual_seed(0)
    for fast, kind, x in ((MatmulConv2d(cin, cout, 4, stride=2, bias=False), nn.Conv2d, torch.randn(3, cin, 2 * size + 2, 2 * size + 2)),
                          (MatmulConvTranspose2d(cin, cout, 4, stride=2, bias=False), nn.ConvTranspose2d, torch.randn(3, cin, size, size))):
        plain = kind(cin, cout, 4, stride=2, bias=False)
        plain.load_state_dict(fast.state_dict())
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        a, b = fast(xa), plain(xb)
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5)
        g = torch.randn_like(a)
        a.backward(g), b.backward(g)
        assert torch.allclose(xa.grad, xb.grad, atol=1e-5)
        assert torch.allclose(fast.weight.grad, plain.weight.grad, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            a16, b16 = fast(x), plain(x)
        assert a16.dtype == b16.dtype == torch.bfloat16
        assert (a16.float() - b).abs().max() <= 2 * (b16.float() - b).abs().max() + 1e-3


def _keras_order_decoder(fast: nn.Sequential) -> nn.Sequential:
    """hybrid_ae's decoder in the spec's layer order, (ConvT -> UpSampling 2x -> ReLU -> BN) x 5,
    UpSampling 2x, ConvT(3), ReLU, built from plain PyTorch layers holding `fast`'s parameters."""
    layers = []
    for block in fast[:5]:
        conv, bn = block[0], block[2]
        cin, cout, k = conv.weight.shape[0], conv.weight.shape[1], conv.weight.shape[-1]
        ref = nn.ConvTranspose2d(cin, cout, k, padding=k // 2)
        ref.load_state_dict({"weight": conv.weight.detach(), "bias": conv.bias.detach()})
        ref_bn = nn.BatchNorm2d(cout, eps=bn.eps, momentum=bn.momentum)
        ref_bn.load_state_dict(bn.state_dict())
        layers += [ref, nn.Upsample(scale_factor=2), nn.ReLU(), ref_bn]
    last = fast[5]
    ref = nn.ConvTranspose2d(last.weight.shape[0], last.weight.shape[1], 3, padding=1)
    ref.load_state_dict({"weight": last.weight.detach(), "bias": last.bias.detach()})
    return nn.Sequential(*layers, nn.Upsample(scale_factor=2), ref, nn.ReLU())


def test_hybrid_fast_decoder_equals_the_keras_layer_order():
    """The decoder runs ReLU and BatchNorm before each upsampling and folds every upsampling into
    the transposed conv after it (UpConvT, the last one 4x); in training mode its output, its
    BatchNorm statistics and its parameter gradients must be those of the spec's layer order."""
    torch.manual_seed(0)
    fast = create_model("hybrid_ae").decoder.train()
    for p in fast.parameters():             # random biases and BN affine, so that none is trivially 0/1
        nn.init.normal_(p, std=0.2) if p.ndim == 1 else None
    keras = _keras_order_decoder(fast).train()
    z = torch.randn(4, 8, 4, 4)
    out_fast, out_keras = fast(z), keras(z)
    assert out_fast.shape == out_keras.shape == (4, 3, 256, 256)
    assert out_keras.abs().max() > 0.1
    assert torch.allclose(out_fast, out_keras, atol=1e-4, rtol=1e-4)
    fast_bns = [b[2] for b in fast[:5]]
    keras_bns = [m for m in keras if isinstance(m, nn.BatchNorm2d)]
    for a, b in zip(fast_bns, keras_bns, strict=True):
        assert torch.allclose(a.running_mean, b.running_mean, atol=1e-5)
        assert torch.allclose(a.running_var, b.running_var, atol=1e-5, rtol=1e-4)
    target = torch.rand_like(out_fast)
    nn.functional.l1_loss(out_fast, target).backward()
    nn.functional.l1_loss(out_keras, target).backward()
    fast_grads = [p.grad for p in fast.parameters()]
    keras_grads = [p.grad for p in keras.parameters()]
    for g_fast, g_keras in zip(fast_grads, keras_grads, strict=True):
        assert torch.allclose(g_fast, g_keras, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("k, scale", [(3, 2), (5, 2), (3, 4)])
def test_upconvt_is_upsampling_then_the_transposed_conv(k, scale):
    from facesketch.models.hybrid_ae import UpConvT
    torch.manual_seed(0)
    up = UpConvT(6, 5, k, scale)
    nn.init.normal_(up.bias)
    ref = nn.ConvTranspose2d(6, 5, k, padding=k // 2)
    ref.load_state_dict({"weight": up.weight.detach(), "bias": up.bias.detach()})
    x = torch.randn(2, 6, 5, 7)
    assert torch.allclose(up(x), ref(nn.functional.interpolate(x, scale_factor=scale)), atol=1e-5)


def test_upconvt_refuses_a_kernel_wider_than_its_window_or_even():
    from facesketch.models.hybrid_ae import UpConvT
    with pytest.raises(ValueError, match="3x3 low-res window"):
        UpConvT(2, 2, 7, 2)
    with pytest.raises(ValueError, match="odd kernel, got 4"):
        UpConvT(2, 2, 4, 2)


def test_pencil_sketch_of_a_real_photo_against_an_independent_computation():
    """greyscale (BT.601), invert, Gaussian blur sigma 21 (truncated at 4 sigma, mirrored edges),
    colour dodge: written out here with NumPy on scikit-image's astronaut photo."""
    import numpy as np
    from PIL import Image
    from skimage import data
    rgb = np.asarray(Image.fromarray(data.astronaut()).resize((256, 256), Image.BILINEAR), dtype=np.float64) / 255
    grey = rgb @ np.array([0.299, 0.587, 0.114])
    r = int(4 * 21 + 0.5)
    kernel = np.exp(-np.arange(-r, r + 1) ** 2 / (2 * 21.0**2))
    kernel /= kernel.sum()
    blur = np.pad(1 - grey, r, mode="symmetric")
    for axis in (0, 1):
        blur = np.apply_along_axis(lambda line: np.convolve(line, kernel, mode="valid"), axis, blur)
    expected = np.clip(grey / np.maximum(1 - blur, 1e-6), 0, 1)
    assert 0.3 < (expected < 1).mean() < 0.7  # a real sketch: neither blank paper nor solid
    out = create_model("pencil")(torch.from_numpy(rgb.transpose(2, 0, 1)[None]).float())[0].numpy()
    assert out.shape == (3, 256, 256) and (out == out[:1]).all()
    assert abs(out[0] - expected).max() < 1e-5
