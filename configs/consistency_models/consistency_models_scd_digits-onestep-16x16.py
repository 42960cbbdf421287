# Continuous-time consistency distillation (sCD; Lu & Song 2025) on digits-16
# in TrigFlow with sCM's exact tangent (the JVP, as the sCT config): dx_t/dt
# from the frozen EDM teacher with the low-frequency time input ln(sigma) / 4
# (consistency_models_edm-lowfreq_*; an EDM network is a TrigFlow network
# with F = -F_edm, exactly), whose weights the student starts from. The
# shipped weights are the EMA at rate 0.995 after 5,000 iterations
# (docs/recipes.md#measured-on-the-digits).
# Train:  python tools/train.py \
#     configs/consistency_models/consistency_models_scd_digits-onestep-16x16.py --amp bf16
_base_ = ['./consistency_models_sct_digits-onestep-16x16.py']

model = dict(
    model_path='mmagic_cm/weights/digits/scd_digits16_ema.pt',
    training_mode='scd',
    train_cfg=dict(
        init_from=None,  # the teacher's weights, through the objective
        teacher=dict(path='mmagic_cm/weights/digits/edm-lowfreq_digits16_ema.pt',
                     dropout=0.0)))
train_cfg = dict(max_iters=5000)
