# sCD (continuous-time consistency distillation) on ImageNet-64 at paper
# scale (GPUs only), following NVlabs FastGen's ImageNet-64 sCM recipe
# (fastgen/configs/experiments/EDM/config_scd_in64.py): as the sCT config
# (bf16 with the JVP in float32, Adam 7e-5 (0.9, 0.99) eps 1e-11, the
# inverse-square-root lr decay after 35,000 iterations, clipping at norm 10,
# EMA rates 0.9999, 0.99995, 0.9996, 600,000 iterations of 1,024 images:
# 128 per GPU x 8 GPUs), with dx_t/dt from the frozen low-frequency teacher
# (ln(sigma) / 4, consistency_models_edm-lowfreq_imagenet1k-64x64.py; the
# student starts from its weights), tau ~ N(-1.0, 1.6²) and dropout 0 in
# student and teacher (config_scd_in64.py: train_p_std 1.6, net.dropout 0.0).
# The alternative, the released teacher (250 ln sigma) with
# tangent='finite-difference', is in the sCT config's comment.
# Export the EMA (tools/export_weights.py --ema 0.9999) to model_path.
_base_ = ['./consistency_models_sct_imagenet1k-64x64.py']

model = dict(
    model_path='work_dirs/scd_imagenet64/scd_imagenet64_ema.pt',
    training_mode='scd',
    unet=dict(dropout=0.0),
    train_cfg=dict(
        p_std=1.6,
        init_from=None,  # the teacher's weights, through the objective
        teacher=dict(path='work_dirs/edm-lowfreq_imagenet64/edm-lowfreq_imagenet64_ema.pt',
                     dropout=0.0)))
