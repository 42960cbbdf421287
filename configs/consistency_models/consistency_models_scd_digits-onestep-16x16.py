# Continuous-time consistency distillation (sCD; Lu & Song 2025) on digits-16
# in TrigFlow, from the shipped EDM teacher (an EDM network is a TrigFlow
# network with F = -F_edm, exactly): tan t = e^tau / sigma_d with
# tau ~ N(-1.0, 1.8²) (FastGen's width for EDM checkpoints), dx_t/dt from the
# teacher, tangent warm-up over 500 iterations, RMS tangent normalisation
# (c = 0.1), prior weighting 1/sigma, the learned adaptive weighting; one-step
# sampling. The time derivative is a central difference over t +- 0.02 (shared
# dropout masks), not the exact JVP: the teacher's time input 250 ln(sigma)
# makes dF/dt mostly high-frequency wiggle of its time embedding (docs/recipes.md).
# The shipped weights are the EMA at rate 0.995 after 3,000 iterations
# (docs/recipes.md#measured-on-the-digits).
# Train:  python tools/train.py \
#     configs/consistency_models/consistency_models_scd_digits-onestep-16x16.py
_base_ = ['./consistency_models_sct_digits-onestep-16x16.py']

model = dict(
    model_path='mmagic_cm/weights/digits/scd_digits16_ema.pt',
    training_mode='scd',
    train_cfg=dict(
        init_from=None,  # the teacher's weights, through the objective
        teacher=dict(path='mmagic_cm/weights/digits/edm_digits16_ema.pt', dropout=0.0)))
train_cfg = dict(max_iters=3000)
