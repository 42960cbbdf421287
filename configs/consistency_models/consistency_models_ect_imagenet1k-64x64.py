# ECT on ImageNet-64 at paper scale (cannot run on a CPU): the released ADM EDM
# teacher tuned into a consistency model with locuslab/ect's public recipe
# (ln t ~ N(-1.1, 2.0²), sigmoid mapping k = 8, b = 1, q = 2, c = 0, RAdam
# 1e-4; their t - r halves every 250 ticks of 12.8k images, here every 25,000
# iterations of a 128-image batch). The paper's ImageNet-64 numbers are with
# EDM2 networks, which this zoo does not ship. No released weights: train, then
# export the EMA (tools/export_weights.py) to model_path.
_base_ = ['./_base_/cm_imagenet64.py']

model = dict(
    model_path='work_dirs/ect_imagenet64/ect_imagenet64_ema.pt',
    training_mode='ect',
    unet=dict(dropout=0.1),
    sampler='onestep',
    train_cfg=dict(
        p_mean=-1.1, p_std=2.0, q=2.0, double=25000, mapping='sigmoid', k=8.0, b=1.0, c=0.0,
        init_from='https://openaipublic.blob.core.windows.net/consistency/'
        'edm_imagenet64_ema.pt',
        ema_rates=(0.9993, 0.9999)))
train_dataloader = dict(batch_size=16)  # x 8 GPUs = 128
train_cfg = dict(max_iters=200000)
optim_wrapper = dict(optimizer=dict(type='RAdam', lr=1e-4))
