"""``check_image_folder``: every image of a dataset folder is checked before
training, corrupt and truncated ones refused in one line."""
import numpy as np
import pytest
from PIL import Image

from mmagic_cm.datasets.folders import check_image_folder, find_bad_images, image_problem


def make_folder(path, count=30, fmt='png'):
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
            path / f'{i:03d}.{fmt}')
    return path


@pytest.mark.parametrize('fmt', ['png', 'jpg'])
@pytest.mark.parametrize('damage', ['truncated', 'garbage'])
def test_the_20th_image_damaged_is_named(tmp_path, fmt, damage):
    folder = make_folder(tmp_path / 'images', fmt=fmt)
    bad = folder / f'019.{fmt}'
    raw = bad.read_bytes()
    bad.write_bytes(raw[:len(raw) * 2 // 3] if damage == 'truncated' else b'not an image')
    with pytest.raises(ValueError) as info:
        check_image_folder(str(folder))
    text = str(info.value)
    assert '\n' not in text
    assert text.startswith(f'1 unreadable image of 30 in dataset folder {folder}: 019.{fmt} (')
    assert text.endswith('; remove or replace it')


def test_many_bad_images_name_the_first_three_and_count(tmp_path):
    folder = make_folder(tmp_path / 'images', count=70)  # >= 64: the threaded path
    for i in (3, 10, 40, 50, 69):
        (folder / f'{i:03d}.png').write_bytes(b'')
    with pytest.raises(ValueError, match=r'^5 unreadable images of 70 in dataset folder .*: '
                       r'003.png \(.*\), 010.png \(.*\), 040.png \(.*\) and 2 more; remove '
                       r'or replace them$'):
        check_image_folder(str(folder))


def test_good_folders_pass_and_count_images_in_subfolders(tmp_path):
    make_folder(tmp_path / 'images' / 'cat', count=3)
    make_folder(tmp_path / 'images' / 'dog', count=2, fmt='jpg')
    (tmp_path / 'images' / 'README.txt').write_text('not an image, not counted')
    assert check_image_folder(str(tmp_path / 'images')) == 5


def test_a_jpeg_with_bytes_after_its_end_marker_is_fine(tmp_path):
    folder = make_folder(tmp_path / 'images', count=1, fmt='jpg')
    path = folder / '000.jpg'
    path.write_bytes(path.read_bytes() + b'camera trailer')  # decoded in full: it reads
    assert image_problem(str(path)) is None
    path.write_bytes(path.read_bytes()[:-40])  # no end marker and short of data
    assert 'truncated' in image_problem(str(path))


def test_threads_and_order(tmp_path):
    folder = make_folder(tmp_path / 'images', count=80)
    files = sorted(str(p) for p in folder.iterdir())
    for i in (70, 5):
        open(files[i], 'r+b').truncate(60)
    assert [p for p, _ in find_bad_images(files, workers=4)] == [files[5], files[70]]


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match='dataset folder not found'):
        check_image_folder(str(tmp_path / 'none'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='holds no images'):
        check_image_folder(str(tmp_path / 'empty'))
