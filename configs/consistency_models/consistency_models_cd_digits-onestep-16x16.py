# Consistency distillation on digits-16 from the shipped EDM teacher: l2
# metric, N = 18 (fixed), target EMA mu = 0.95 (fixed), online network
# initialised from the teacher; one-step sampling.
# Train:  python tools/train.py \
#     configs/consistency_models/consistency_models_cd_digits-onestep-16x16.py
_base_ = ['./_base_/cm_digits16.py']

model = dict(
    model_path='mmagic_cm/weights/digits/cd_digits16_ema.pt',
    training_mode='consistency_distillation',
    unet=dict(dropout=0.0),
    sampler='onestep',
    train_cfg=dict(
        loss='l2',
        schedule=dict(type='original', target_ema_mode='fixed', scale_mode='fixed',
                      start_ema=0.95, start_scales=18),
        noise_sampler='uniform',
        weighting='uniform',
        teacher=dict(path='mmagic_cm/weights/digits/edm_digits16_ema.pt', dropout=0.1),
        ema_rates=(0.995, 0.999),
        seed=0))
train_cfg = dict(max_iters=2000)
optim_wrapper = dict(optimizer=dict(type='RAdam', lr=4e-5))
