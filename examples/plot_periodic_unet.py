"""
A periodic U-Net up-sampling block in PyTorch
=============================================

Fields on a periodic domain (a torus: climate on a longitude band, turbulence
in a periodic box, PDE surrogates such as PDEArena's) have no border, so a
network's layers should have none either. PyTorch's ``ConvTranspose2d``, the
up-sampling layer of a U-Net decoder, pads only with zeros
(pytorch/pytorch#46027; pdearena#38 asks for exactly this block).
:class:`tconv_sparse.torch.ConvTranspose2d` takes ``padding_mode="circular"``:
it is the exact transpose of the circularly padded strided convolution, so the
block is periodic by construction. Here a tiny up-sampling block (transposed
convolution, activation, convolution) learns to double the resolution of
random periodic fields, once with circular and once with zero padding.
"""

import matplotlib.pyplot as plt
import torch

import tconv_sparse.torch as tst

torch.manual_seed(0)
torch.set_num_threads(1)  # layers this small run fastest on one thread
N = 16  # coarse grid; the block outputs 2N x 2N


def periodic_fields(count, size, modes=3):
    """Random smooth periodic fields: a few low Fourier modes on a ``size`` x ``size`` torus."""
    angle = torch.arange(size) * (2 * torch.pi / size)
    k = torch.arange(-modes, modes + 1)
    waves = torch.exp(1j * k[:, None] * angle[None, :])           # (2 * modes + 1, size)
    coefficients = torch.randn(count, len(k), len(k), dtype=torch.complex64)
    fields = torch.einsum("nab,ai,bj->nij", coefficients, waves, waves).real
    return (fields / fields.std()).unsqueeze(1)                    # (count, 1, size, size)


def block(padding_mode):
    """Up-sample by 2 (``ConvTranspose2d`` k4 s2 p1), GELU, then a 3x3 convolution."""
    return torch.nn.Sequential(
        tst.ConvTranspose2d(1, 8, 4, stride=2, padding=1, padding_mode=padding_mode),
        torch.nn.GELU(),
        tst.Conv2d(8, 1, 3, padding=1, padding_mode=padding_mode),
    )


# %%
# Training on a toy periodic field
# --------------------------------
# The fine field is the target; the input is the field averaged over 2x2
# cells. Both blocks start from the same weights (the zero-padded one is what
# ``torch.nn.ConvTranspose2d`` computes) and take the same 150 Adam steps.
fine = periodic_fields(64, 2 * N)
coarse = torch.nn.functional.avg_pool2d(fine, 2)
blocks = {mode: block(mode) for mode in ("circular", "zeros")}
blocks["zeros"].load_state_dict(blocks["circular"].state_dict())
losses = {mode: [] for mode in blocks}
for mode, model in blocks.items():
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(150):
        optimiser.zero_grad()
        loss = torch.nn.functional.mse_loss(model(coarse), fine)
        loss.backward()
        optimiser.step()
        losses[mode].append(loss.item())
    print(f"{mode:>8} padding: loss {losses[mode][0]:.3f} -> {losses[mode][-1]:.4f}")

figure, axis = plt.subplots(figsize=(6, 3.6), layout="constrained")
for mode, curve in losses.items():
    axis.semilogy(curve, label=f'padding_mode="{mode}"')
axis.set_xlabel("Adam step")
axis.set_ylabel("mean squared error")
axis.set_title("Up-sampling block on periodic fields")
axis.legend()

# %%
# Exactly periodic: roll equivariance
# -----------------------------------
# On a torus, shifting the input by ``(a, b)`` coarse cells must shift the
# output by ``(2a, 2b)`` fine cells. The circular block does so to float
# rounding (in float64), everywhere; the zero-padded block breaks it along
# the borders of both the input and the rolled input, where its zeros stand
# in for the other side of the torus.
test = coarse[:1].double()
shift = (5, 3)
errors = {}
for mode, model in blocks.items():
    model = model.double()
    with torch.no_grad():
        rolled_input = model(torch.roll(test, shift, dims=(-2, -1)))
        rolled_output = torch.roll(model(test), (2 * shift[0], 2 * shift[1]), dims=(-2, -1))
    errors[mode] = (rolled_input - rolled_output).abs()[0, 0]
    print(f"{mode:>8} padding: max |f(roll x) - roll f(x)| = {errors[mode].max().item():.1e}")

figure, axes = plt.subplots(1, 3, figsize=(11, 4.2), layout="constrained")
axes[0].imshow(fine[0, 0], cmap="RdBu_r")
axes[0].set_title("a target field (2N x 2N)")
largest = max(error.max().item() for error in errors.values())
for axis, (mode, error) in zip(axes[1:], errors.items()):
    image = axis.imshow(error, cmap="magma", vmin=0.0, vmax=largest)
    axis.set_title(f'"{mode}": |f(roll x) - roll f(x)|\nmax {error.max().item():.1e}')
for axis in axes:
    axis.set_axis_off()
figure.colorbar(image, ax=axes[1:], shrink=0.8)
plt.show()
