# CT on LSUN Bedroom-256, two-step ts 0,67,150 on 151 steps: the paper's FID 7.85.
_base_ = ['./_base_/cm_lsun256.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'ct_bedroom256.pt',
    training_mode='consistency_training',
    sampler='multistep',
    steps=151,
    ts=(0, 67, 150),
    train_cfg=dict(
        loss='lpips',
        schedule=dict(type='original', target_ema_mode='adaptive', scale_mode='progressive',
                      start_ema=0.95, start_scales=2, end_scales=150,
                      total_steps=1000000),
        weighting='uniform',
        # launch.sh passes the EDM teacher to CT runs: it initialises the network
        init_from='https://openaipublic.blob.core.windows.net/consistency/'
        'edm_bedroom256_ema.pt',
        ema_rates=(0.9999, 0.99994, 0.9999432189950708)))

# training: the original scripts/launch.sh (8 x 32 = global batch 256)
train_dataloader = dict(batch_size=32)
train_cfg = dict(max_iters=1000000)
optim_wrapper = dict(optimizer=dict(lr=5e-05))
