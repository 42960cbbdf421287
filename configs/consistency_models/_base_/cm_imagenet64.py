# Architecture of the released ImageNet-64 checkpoints (class-conditional ADM,
# 296M parameters): the flags of the original scripts/launch.sh.
_base_ = [
    '../../_base_/cm_train_runtime.py', '../../_base_/gen_eval.py',
    '../../_base_/datasets/imagenet64_test.py', '../../_base_/datasets/imagenet64_train.py',
]

model = dict(
    type='ConsistencyModel',
    unet=dict(
        type='ConsistencyUNetModel',
        image_size=64,
        in_channels=3,
        model_channels=192,
        num_res_blocks=3,
        attention_resolutions='32,16,8',
        channel_mult='1,2,3,4',
        num_classes=1000,
        num_heads=4,
        num_head_channels=64,
        use_scale_shift_norm=True,
        resblock_updown=True,
        learn_sigma=False,
        dropout=0.0),
    precond=dict(type='KarrasPrecond', sigma_data=0.5, sigma_min=0.002, sigma_max=80.0,
                 rho=7.0, weight_schedule='uniform'),
    training_mode='consistency_distillation',
    model_path=None,
    sampler='onestep',
    steps=40,
    ts=None,
    # 'determ' draws the noise of all num_samples at once: fine at 64x64
    generator='determ',
    seed=42,
    batch_size=4,
    clip_denoised=True,
    data_preprocessor=dict(type='DataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3))
