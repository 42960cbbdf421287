# MMagic's generative evaluation: FID and IS over 50k samples (Tero Karras'
# Inception, as StyleGAN/EDM evaluate) and improved precision/recall, run by
# `python tools/test.py CONFIG CHECKPOINT`. Real statistics come from the
# test dataloader's images (cached by MMagic after the first run).
# Offline, tools/test.py says which weight file to fetch and where to put it.
test_cfg = dict(type='MultiTestLoop')
metrics = [
    dict(
        type='FrechetInceptionDistance',
        prefix='FID-50k',
        fake_nums=50000,
        real_nums=50000,
        inception_style='StyleGAN',
        sample_model='orig'),
    dict(
        type='IS',
        prefix='IS-50k',
        fake_nums=50000,
        inception_style='StyleGAN',
        sample_model='orig'),
    dict(
        type='PrecisionAndRecall',
        prefix='PR-50k',
        fake_nums=50000,
        real_nums=50000,
        sample_model='orig',
        vgg16_script='work_dirs/cache/vgg16.pt'),
]
test_evaluator = dict(type='Evaluator', metrics=metrics)
