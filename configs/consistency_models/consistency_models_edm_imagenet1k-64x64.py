# EDM teacher on ImageNet-64: Heun, 40 steps, s_churn 0 (79 NFE): the paper's FID 2.44.
_base_ = ['./_base_/cm_imagenet64.py']

model = dict(
    model_path='https://openaipublic.blob.core.windows.net/consistency/'
    'edm_imagenet64_ema.pt',
    training_mode='edm',
    sampler='heun',
    steps=40,
    s_churn=0.0,
    unet=dict(dropout=0.1),
    precond=dict(weight_schedule='karras'),
    train_cfg=dict(
        sigma_sampler=dict(p_mean=-1.2, p_std=1.2),
        ema_rates=(0.999, 0.9999, 0.9999432189950708)))

# training: the original scripts/launch.sh (8 x 512 = global batch 4096)
train_dataloader = dict(batch_size=512)
train_cfg = dict(max_iters=600000)
optim_wrapper = dict(optimizer=dict(lr=0.0001))
