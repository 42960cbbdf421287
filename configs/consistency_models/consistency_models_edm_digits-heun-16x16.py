# EDM teacher on digits-16: denoising score matching with lognormal noise
# levels and Karras weighting; samples with Heun, 40 steps (79 NFE).
# Train:  python tools/train.py \
#     configs/consistency_models/consistency_models_edm_digits-heun-16x16.py
_base_ = ['./_base_/cm_digits16.py']

model = dict(
    model_path='mmagic_cm/weights/digits/edm_digits16_ema.pt',
    training_mode='edm',
    precond=dict(weight_schedule='karras'),
    sampler='heun',
    steps=40,
    train_cfg=dict(
        sigma_sampler=dict(p_mean=-1.2, p_std=1.2),
        ema_rates=(0.995, 0.999),
        seed=0))
train_cfg = dict(max_iters=6000)
