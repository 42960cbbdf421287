# Tiny class-conditional model (16x16, ~1M parameters) for fast tests; the
# architecture of the reference fixtures' "tiny_cond".
_base_ = ['../../configs/_base_/default_runtime.py']

model = dict(
    type='ConsistencyModel',
    unet=dict(
        type='ConsistencyUNetModel',
        image_size=16,
        model_channels=32,
        num_res_blocks=1,
        attention_resolutions='8',
        channel_mult='1,2',
        num_classes=1000,
        num_heads=4,
        num_head_channels=16,
        use_scale_shift_norm=True,
        resblock_updown=True),
    precond=dict(type='KarrasPrecond', sigma_min=0.002, sigma_max=80.0),
    training_mode='consistency_distillation',
    sampler='onestep',
    generator='determ',
    seed=42,
    batch_size=2)
