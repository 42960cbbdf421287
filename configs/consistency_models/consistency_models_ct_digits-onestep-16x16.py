# Consistency training on digits-16 with the improved recipe (Song & Dhariwal
# 2023): pseudo-Huber loss (c = 0.00054 sqrt(d)), lognormal(-1.1, 2.0) noise
# levels over the Karras grid, N(k) = min(10 * 2^floor(k/K'), 1280) + 1, no
# EMA target, weighting 1/(sigma_{i+1} - sigma_i); one-step sampling.
# Train:  python tools/train.py \
#     configs/consistency_models/consistency_models_ct_digits-onestep-16x16.py
_base_ = ['./_base_/cm_digits16.py']

model = dict(
    model_path='mmagic_cm/weights/digits/ct_digits16_ema.pt',
    training_mode='consistency_training',
    unet=dict(dropout=0.2),
    sampler='onestep',
    train_cfg=dict(
        loss=dict(type='pseudo-huber'),
        schedule=dict(type='improved', s0=10, s1=1280, total_steps=6000),
        noise_sampler=dict(type='lognormal', p_mean=-1.1, p_std=2.0),
        weighting='improved',
        ema_rates=(0.995, 0.999),
        seed=0))
train_cfg = dict(max_iters=6000)
optim_wrapper = dict(optimizer=dict(type='RAdam', lr=1e-4))
