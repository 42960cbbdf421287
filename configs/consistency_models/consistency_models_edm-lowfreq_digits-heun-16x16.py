# EDM teacher on digits-16 with a low-frequency time input, ln(sigma) / 4
# (NVlabs EDM's ADM, FastGen's sCM teachers) instead of the original's
# 250 ln(sigma): its time derivative is smooth, so sCM's exact tangent (the
# JVP) can follow it. The teacher of the ECT, sCT and sCD digits models;
# fine-tuned for 2,500 iterations from the 250 ln(sigma) teacher (same data, objective and
# sampler: Heun, 40 steps, 79 NFE).
# Train:  python tools/train.py \
#     configs/consistency_models/consistency_models_edm-lowfreq_digits-heun-16x16.py
_base_ = ['./consistency_models_edm_digits-heun-16x16.py']

model = dict(
    model_path='mmagic_cm/weights/digits/edm-lowfreq_digits16_ema.pt',
    precond=dict(time_scale=0.25),
    train_cfg=dict(init_from='mmagic_cm/weights/digits/edm_digits16_ema.pt'))
train_cfg = dict(max_iters=2500)
