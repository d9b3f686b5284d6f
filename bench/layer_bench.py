"""Per-layer speed of conv_ae and hybrid_ae, and of exact reformulations that were tried.

Times forward + backward of each heavy layer at training batch 16 (fp32), as PyTorch runs it
and as the same function computed another way, and reports each as a share of the fp32 matmul
ceiling measured in the same run. It shows where the models lose time to the ceiling and why
the reformulations were not adopted. Each alternative is checked to give the same output.

    python bench/layer_bench.py [--reps 3] [--only "hybrid_ae dec"]
"""

from __future__ import annotations

from facesketch.process import configure_process

configure_process()  # huge pages, as the facesketch command sets them, before torch allocates

import argparse
import time
from functools import partial
from types import SimpleNamespace as NS  # a module's weights, to run its forward on the bench's tensors

from readme_block import write_block
from train_bench import cpu_flags
import torch
import torch.nn.functional as F

from facesketch.models.conv_ae import ConvAE, MatmulConv2d, MatmulConvTranspose2d
from facesketch.models.hybrid_ae import UpConvT

PHASE_IDX = torch.tensor([[2, 0], [3, 1]])  # 4x4 stride-2 transposed conv: kernel row for (output parity, tap)


def convT_phases(x, w):
    """conv_transpose2d(x, w, stride=2) as one 2x2 conv with 4x the outputs, then pixel shuffle."""
    ci, co = w.shape[:2]
    v = w[:, :, PHASE_IDX[:, :, None, None], PHASE_IDX[None, None, :, :]]  # ci co py a px b
    v = v.permute(1, 2, 4, 0, 3, 5).reshape(co * 4, ci, 2, 2)
    return F.pixel_shuffle(F.conv2d(F.pad(x, (1, 1, 1, 1)), v), 2)


def convT_gemm(x, w):
    """conv_transpose2d(x, w, stride=2) as one matmul and col2im (F.fold): conv_ae's MatmulConvTranspose2d."""
    return MatmulConvTranspose2d.forward(NS(weight=w, kernel_size=(4, 4), stride=(2, 2)), x)


def conv_s2d(x, w):
    """conv2d(x, w, stride=2) with a 4x4 kernel as space-to-depth and a 2x2 stride-1 conv."""
    co, ci = w.shape[:2]
    v = w.view(co, ci, 2, 2, 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(co, ci * 4, 2, 2)
    h = x.shape[-1] - x.shape[-1] % 2
    return F.conv2d(F.pixel_unshuffle(x[..., :h, :h], 2), v)


def conv_gemm(x, w):
    """conv2d(x, w, stride=2) with a 4x4 kernel as im2col (F.unfold) and one matmul: conv_ae's MatmulConv2d."""
    return MatmulConv2d.forward(NS(weight=w, kernel_size=(4, 4), stride=(2, 2), out_channels=w.shape[0]), x)


def pool_phases(x, w, b):
    """max_pool2d(conv2d(x, w, b, 'same'), 2): the four pool candidates as one conv on the
    space-to-depth input, then a max over them (hybrid_ae's first block)."""
    co, ci, k, _ = w.shape
    frames = [F.pad(w, (px, 6 - k - px, py, 6 - k - py)) for py in range(2) for px in range(2)]
    v = torch.cat([f.view(co, ci, 3, 2, 3, 2).permute(0, 1, 3, 5, 2, 4).reshape(co, ci * 4, 3, 3) for f in frames])
    n, _, h, wd = x.shape
    y = F.conv2d(F.pixel_unshuffle(F.pad(x, (2, 2, 2, 2)), 2), v)
    return y.view(n, 4, co, h // 2, wd // 2).amax(1) + b[:, None, None]


def timed(f, args, reps: int) -> tuple[float, torch.Tensor]:
    def once():
        for a in args:
            a.grad = None
        y = f(*args)
        y.backward(torch.ones_like(y))
        return y
    out = once()
    t = time.perf_counter()
    for _ in range(reps):
        once()
    return (time.perf_counter() - t) / reps, out.detach()


def ceiling() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    best = 0.0
    for _ in range(4):
        n, t = 0, time.perf_counter()
        while time.perf_counter() - t < 1.0:
            a @ b
            n += 1
        best = max(best, 2 * 2048**3 * n / (time.perf_counter() - t) / 1e9)
    return best


def cases(bs: int):
    """(label, MACs of one forward, [(variant, fn, args-builder)])."""
    cl = torch.channels_last
    for ci, co, h in ((512, 512, 2), (512, 256, 6), (256, 128, 14), (128, 64, 30), (64, 32, 62), (32, 16, 126)):
        def mk_up(fmt, ci=ci, co=co, h=h):
            x = torch.randn(bs, ci, h, h).contiguous(memory_format=fmt).requires_grad_()
            return x, (torch.randn(ci, co, 4, 4) * 0.05).contiguous(memory_format=fmt).requires_grad_()
        gemm = h == 2   # the bottleneck: conv_ae runs this layer as MatmulConvTranspose2d
        yield (f"conv_ae up {ci}->{co} @{h}px", bs * h * h * ci * co * 16, [
            (f"PyTorch, channels_last ({'before' if gemm else 'default'})",
             lambda x, w: F.conv_transpose2d(x, w, stride=2), partial(mk_up, cl)),
            ("PyTorch, NCHW", lambda x, w: F.conv_transpose2d(x, w, stride=2), partial(mk_up, torch.contiguous_format)),
            ("4 phase convs + pixel shuffle", convT_phases, partial(mk_up, cl)),
            ("matmul + col2im" + (" (default)" if gemm else ""), convT_gemm, partial(mk_up, cl))])
    for ci, co, h in ((3, 16, 256), (16, 32, 127), (32, 64, 62), (64, 128, 30), (128, 256, 14), (256, 512, 6)):
        ho = (h - 4) // 2 + 1
        def mk_down(fmt, ci=ci, co=co, h=h):
            x = torch.randn(bs, ci, h, h).contiguous(memory_format=fmt).requires_grad_(ci != 3)
            return x, (torch.randn(co, ci, 4, 4) * 0.05).contiguous(memory_format=fmt).requires_grad_()
        gemm = ho == 2  # the bottleneck: conv_ae runs this layer as MatmulConv2d
        yield (f"conv_ae down {ci}->{co} @{h}px", bs * ho * ho * ci * co * 16, [
            (f"PyTorch, channels_last ({'before' if gemm else 'default'})",
             lambda x, w: F.conv2d(x, w, stride=2), partial(mk_down, cl)),
            ("PyTorch, NCHW", lambda x, w: F.conv2d(x, w, stride=2), partial(mk_down, torch.contiguous_format)),
            ("space-to-depth + 2x2 conv", conv_s2d, partial(mk_down, cl)),
            ("im2col + matmul" + (" (default)" if gemm else ""), conv_gemm, partial(mk_down, cl))])

    for ci, co, h in ((16, 8, 254), (8, 3, 255)):  # the head: two 2x2 stride-1 transposed convs with bias
        def mk_head(fmt, ci=ci, co=co, h=h):
            x = torch.randn(bs, ci, h, h).contiguous(memory_format=fmt).requires_grad_()
            w = (torch.randn(ci, co, 2, 2) * 0.1).contiguous(memory_format=fmt).requires_grad_()
            return x, w, torch.zeros(co, requires_grad=True)
        yield (f"conv_ae head {ci}->{co} 2x2 @{h}px", bs * h * h * ci * co * 4, [
            ("PyTorch, channels_last (default)", F.conv_transpose2d, partial(mk_head, cl)),
            ("PyTorch, NCHW", F.conv_transpose2d, partial(mk_head, torch.contiguous_format))])

    def mk_both(fmt):
        x = torch.randn(bs, 16, 254, 254).contiguous(memory_format=fmt).requires_grad_()
        return (x, (torch.randn(16, 8, 2, 2) * 0.1).requires_grad_(), (torch.randn(8) * 0.1).requires_grad_(),
                (torch.randn(8, 3, 2, 2) * 0.1).requires_grad_(), (torch.randn(3) * 0.1).requires_grad_())

    def head_two(x, w1, b1, w2, b2):
        return F.conv_transpose2d(F.conv_transpose2d(x, w1, b1), w2, b2)

    def head_one(x, w1, b1, w2, b2):
        return ConvAE.head_as_one(NS(head=(NS(weight=w1, bias=b1), NS(weight=w2, bias=b2))), x)
    for fmt, name in ((cl, "channels_last"), (torch.contiguous_format, "NCHW")):
        yield (f"conv_ae head, both convs 16->8->3 @254px ({name})", bs * (254 * 254 * 16 * 8 + 255 * 255 * 8 * 3) * 4, [
            ("two 2x2 transposed convs", head_two, partial(mk_both, fmt)),
            ("as one 3x3 transposed conv + border bias map (default)", head_one, partial(mk_both, fmt))])

    def mk1():
        return (torch.rand(bs, 3, 256, 256), (torch.randn(256, 3, 5, 5) * 0.1).requires_grad_(),
                torch.zeros(256, requires_grad=True))
    yield ("hybrid_ae enc 3->256 5x5 + max-pool @256px", bs * 256 * 256 * 3 * 256 * 25, [
        ("PyTorch, NCHW (default)", lambda x, w, b: F.max_pool2d(F.conv2d(x, w, b, padding=2), 2), mk1),
        ("pool candidates as 4 phase convs + max", pool_phases, mk1)])
    for ci, co, k, h, transposed in ((256, 128, 3, 128, False), (128, 256, 5, 64, True)):
        def mk_conv(ci=ci, co=co, k=k, h=h, transposed=transposed):
            w = torch.randn(*((ci, co) if transposed else (co, ci)), k, k) * 0.02
            return torch.randn(bs, ci, h, h).requires_grad_(), w.requires_grad_()
        op = (lambda x, w, k=k: F.conv_transpose2d(x, w, padding=k // 2)) if transposed else \
            (lambda x, w, k=k: F.conv2d(x, w, padding=k // 2))
        kind = "dec (transposed)" if transposed else "enc"
        yield (f"hybrid_ae {kind} {ci}->{co} {k}x{k} @{h}px", bs * h * h * ci * co * k * k,
               [("PyTorch, NCHW", op, mk_conv)])

    # the same transposed conv as hybrid_ae has it: on the previous block's 2x nearest upsampling
    def mk_up(cl):
        return (torch.randn(bs, 128, 32, 32).contiguous(memory_format=cl).requires_grad_(),
                (torch.randn(128, 256, 5, 5) * 0.02).requires_grad_())

    def keras_order(x, w):
        return F.conv_transpose2d(F.interpolate(x, scale_factor=2), w, padding=2)

    taps = UpConvT(1, 1, 5).taps

    def folded(x, w):
        return UpConvT.forward(NS(taps=taps, weight=w, bias=torch.zeros(256), scale=2), x)
    for cl, name in ((torch.contiguous_format, "NCHW"), (torch.channels_last, "channels_last")):
        yield (f"hybrid_ae dec upsample 2x + transposed 128->256 5x5 @64px ({name})", bs * 64 * 64 * 128 * 256 * 25, [
            ("upsample, then the transposed conv (Keras order)", keras_order, partial(mk_up, cl)),
            ("UpConvT: 4 phase 3x3 convs at 32px + pixel shuffle (default)", folded, partial(mk_up, cl))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--only", default="", help="time only the layers whose label contains this text, and print "
                    "the rows without writing bench/README.md")
    args = ap.parse_args()
    torch.manual_seed(0)
    top = ceiling()
    print(f"fp32 matmul ceiling {top:.1f} GFLOP/s", flush=True)
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {cpu_flags()}, torch {torch.__version__}, batch {args.batch}, fp32, forward + "
             f"backward (3x the forward FLOPs; the first layer needs no input gradient but is counted the same), "
             f"fp32 matmul ceiling in the same run {top:.1f} GFLOP/s.", "",
             "| layer | computed as | ms | % fp32 ceiling | vs default | max abs difference |", "|---|---|---|---|---|---|"]
    for label, macs, variants in cases(args.batch):
        if args.only not in label:
            continue
        base_s = base_out = None
        for name, fn, build in variants:
            torch.manual_seed(1)  # the same inputs for every variant, so their outputs can be compared
            inputs = build()
            seconds, out = timed(fn, inputs, args.reps)
            if base_s is None:
                base_s, base_out, diff = seconds, out, "-"
            else:
                diff = f"{(out - base_out).abs().max().item():.1e}"
            pct = 100 * 6 * macs / seconds / 1e9 / top
            lines.append(f"| {label} | {name} | {1000 * seconds:.0f} | {pct:.0f}% | {base_s / seconds:.2f}x | {diff} |")
            print(lines[-1], flush=True)
    if not args.only:
        write_block("layer_bench", lines, "Per layer (`python bench/layer_bench.py`)")


if __name__ == "__main__":
    main()
