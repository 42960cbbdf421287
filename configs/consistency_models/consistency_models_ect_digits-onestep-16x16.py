# Easy Consistency Tuning (ECT; Geng et al. 2025) on digits-16: the online
# network starts from the EDM teacher with the low-frequency time input
# ln(sigma) / 4 (precond time_scale=0.25; consistency_models_edm-lowfreq_*);
# ln t ~ N(-1.1, 2.0²), r from t by the sigmoid mapping (k = 8, b = 1) with
# t - r halving (q = 2) every 1,200 iterations, plain L2 norm (c = 0) weighted
# by 1 / (t - r), shared noise and dropout masks; one-step sampling. The
# shipped weights are the EMA at rate 0.995 after 7,200 iterations (the end
# of stage 5, the best of the checkpoints saved every 600 iterations at
# either EMA rate; halving every 800 peaked at 3,000 and got worse after:
# docs/recipes.md#measured-on-the-digits).
# Train:  python tools/train.py \
#     configs/consistency_models/consistency_models_ect_digits-onestep-16x16.py --amp bf16
_base_ = ['./_base_/cm_digits16.py']

model = dict(
    model_path='mmagic_cm/weights/digits/ect_digits16_ema.pt',
    training_mode='ect',
    precond=dict(time_scale=0.25),
    unet=dict(dropout=0.1),
    sampler='onestep',
    sample_ema=0.995,
    train_cfg=dict(
        p_mean=-1.1, p_std=2.0,
        q=2.0, double=1200, mapping='sigmoid', k=8.0, b=1.0, c=0.0,
        init_from='mmagic_cm/weights/digits/edm-lowfreq_digits16_ema.pt',
        ema_rates=(0.995, 0.999),
        seed=0))
train_cfg = dict(max_iters=7200)
optim_wrapper = dict(optimizer=dict(type='RAdam', lr=1e-4))
