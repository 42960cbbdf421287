# CT on ImageNet-64, two-step ts 0,106,200 on 201 steps: the paper's FID 11.1.
_base_ = ['./_base_/cm_imagenet64.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'ct_imagenet64.pt',
    training_mode='consistency_training',
    sampler='multistep',
    steps=201,
    ts=(0, 106, 200),
    train_cfg=dict(
        loss='lpips',
        schedule=dict(type='original', target_ema_mode='adaptive', scale_mode='progressive',
                      start_ema=0.95, start_scales=2, end_scales=200,
                      total_steps=800000),
        weighting='uniform',
        # launch.sh passes the EDM teacher to CT runs: it initialises the network
        init_from='https://openaipublic.blob.core.windows.net/consistency/'
        'edm_imagenet64_ema.pt',
        ema_rates=(0.999, 0.9999, 0.9999432189950708)))

# training: the original scripts/launch.sh (8 x 256 = global batch 2048)
train_dataloader = dict(batch_size=256)
train_cfg = dict(max_iters=800000)
optim_wrapper = dict(optimizer=dict(lr=0.0001))
