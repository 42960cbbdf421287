# CD (LPIPS) on LSUN Bedroom-256, two-step ts 0,17,39 on 40 steps: the paper's FID 5.22.
_base_ = ['./_base_/cm_lsun256.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'cd_bedroom256_lpips.pt',
    sampler='multistep',
    steps=40,
    ts=(0, 17, 39),
    train_cfg=dict(
        loss='lpips',
        schedule=dict(type='original', target_ema_mode='fixed', scale_mode='fixed',
                      start_ema=0.95, start_scales=40, total_steps=600000),
        weighting='uniform',
        teacher=dict(path='https://openaipublic.blob.core.windows.net/consistency/'
                     'edm_bedroom256_ema.pt', dropout=0.1),
        ema_rates=(0.9999, 0.99994, 0.9999432189950708)))

# training: the original scripts/launch.sh (8 x 32 = global batch 256)
train_dataloader = dict(batch_size=32)
train_cfg = dict(max_iters=600000)
optim_wrapper = dict(optimizer=dict(lr=1e-05))
