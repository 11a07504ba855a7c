"""Peer of `gan bench` (our generated `configs/experiment/gan.yaml` binary): one cyto_dl GAN
training step on PyTorch with cyto_dl 0.6.2's own classes, at our experiment's sizes.

    generator: MONAI DynUNet (strides [1,2,2], filters [16,32,64], res blocks) + tanh (GANHead)
    discriminator: cyto_dl MultiScaleDiscriminator(n_scales=1, n_layers=1, ndf=16, input_nc=2)
    step: generator loss (Pix2PixHD + 100 x MSE) backward, Adam step; discriminator loss
          backward, Adam step (GAN.model_step's order)

Input batch [2, 1, 8, 32, 32] (batch 2 of `data._aux.patch_shape`). Prints one JSON line with
the mean ms per step over `steps` after 3 warm-up steps. Usage:
    VENV/bin/python bench/gan_step_torch.py [steps]      (VENV: cyto_dl's, see README)
"""
import json
import sys
import time

import torch
from monai.networks.nets import DynUNet

from cyto_dl.nn.discriminators import MultiScaleDiscriminator
from cyto_dl.nn.losses import Pix2PixHD

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
torch.manual_seed(0)
shape = (2, 1, 8, 32, 32)
gen = DynUNet(spatial_dims=3, in_channels=1, out_channels=1, strides=[1, 2, 2], kernel_size=[3, 3, 3],
              upsample_kernel_size=[2, 2], filters=[16, 32, 64], dropout=0.0, res_block=True)
disc = MultiScaleDiscriminator(n_scales=1, dim=3, input_nc=2, ndf=16, n_layers=1)
g_opt = torch.optim.Adam(gen.parameters(), lr=1e-4, weight_decay=1e-4, betas=(0.5, 0.999))
d_opt = torch.optim.Adam(disc.parameters(), lr=1e-4, weight_decay=1e-4, betas=(0.5, 0.999))
gan_loss, mse = Pix2PixHD(scales=1), torch.nn.MSELoss()
x = (torch.rand(shape) > 0.5).float()
y = torch.rand(shape) * 2 - 1


def step():
    y_hat = torch.tanh(gen(x))
    loss_d = gan_loss(disc(x, y, y_hat.detach()), "discriminator")
    loss_g = gan_loss(disc(x, y, y_hat), "generator") + mse(y, y_hat) * 100
    g_opt.zero_grad()
    loss_g.backward()
    g_opt.step()
    d_opt.zero_grad()
    loss_d.backward()
    d_opt.step()


for _ in range(3):
    step()
t = time.perf_counter()
for _ in range(steps):
    step()
ms = (time.perf_counter() - t) / steps * 1e3
print(json.dumps({"peer": "torch " + torch.__version__ + " + cyto_dl", "threads": torch.get_num_threads(),
                  "input_shape": list(shape), "train_step_ms": round(ms, 2)}))
