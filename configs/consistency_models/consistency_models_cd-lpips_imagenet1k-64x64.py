# CD (LPIPS) on ImageNet-64, two-step ts 0,22,39 on 40 steps: the paper's FID 4.70.
_base_ = ['./_base_/cm_imagenet64.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'cd_imagenet64_lpips.pt',
    sampler='multistep',
    steps=40,
    ts=(0, 22, 39),
    train_cfg=dict(
        loss='lpips',
        schedule=dict(type='original', target_ema_mode='fixed', scale_mode='fixed',
                      start_ema=0.95, start_scales=40, total_steps=600000),
        weighting='uniform',
        teacher=dict(path='https://openaipublic.blob.core.windows.net/consistency/'
                     'edm_imagenet64_ema.pt', dropout=0.1),
        ema_rates=(0.999, 0.9999, 0.9999432189950708)))

# training: the original scripts/launch.sh (8 x 256 = global batch 2048)
train_dataloader = dict(batch_size=256)
train_cfg = dict(max_iters=600000)
optim_wrapper = dict(optimizer=dict(lr=8e-06))
