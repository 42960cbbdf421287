"""ShardStore on damaged folders: shards that fail their check are named and
drawn again, a malformed run.json is refused in one line."""
import json
import os
import zipfile

import numpy as np
import pytest

from mmagic_cm.distributed.shards import ShardStore, check_shard_data, shard_ranges

RUN = dict(num_samples=6, shard_size=2, seed=1)


def make(tmp_path, shards=(0, 1, 2)):
    store = ShardStore(str(tmp_path / 'out.npz.shards'), shard_ranges(6, 2), RUN)
    assert store.prepare() == []
    rng = np.random.default_rng(0)
    for k in shards:
        store.write(k, rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8),
                    np.array([k, k], dtype=np.int64))
    return ShardStore(store.folder, store.ranges, RUN)  # a later start


def flip_image_byte(path):
    """Damage one byte of the images' data (a zip CRC error, not a bad header)."""
    with np.load(path) as data:
        images = data['images'].tobytes()
    raw = bytearray(open(path, 'rb').read())
    at = raw.find(images)
    assert at > 0
    raw[at + len(images) // 2] ^= 0xFF
    open(path, 'wb').write(bytes(raw))


def resave(path, **arrays):
    with np.load(path) as data:
        old = {k: data[k] for k in data.files}
    np.savez(path, **{**old, **arrays})


def test_intact_shards_are_kept(tmp_path):
    store = make(tmp_path)
    assert store.prepare() == [0, 1, 2]
    images, labels = store.gather()
    assert images.shape == (6, 8, 8, 3) and labels.tolist() == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize('damage,why', [
    (flip_image_byte, "BadZipFile: Bad CRC-32 for file 'images.npy'"),
    (lambda p: open(p, 'r+b').truncate(200), 'BadZipFile'),
    (lambda p: resave(p, images=np.zeros((2, 8, 8), np.uint8)), 'images uint8 (2, 8, 8), not'),
    (lambda p: resave(p, images=np.zeros((2, 8, 8, 3), np.float32)), 'images float32'),
    (lambda p: resave(p, images=np.zeros((3, 8, 8, 3), np.uint8)), 'images uint8 (3, 8, 8, 3)'),
    (lambda p: resave(p, labels=np.zeros(3, np.int64)), 'labels int64 (3,), not integers'),
    (lambda p: resave(p, extra=np.zeros(1)), 'holds extra.npy, images.npy'),
], ids=['crc', 'truncated', 'ndim', 'dtype', 'count', 'labels', 'extra'])
def test_a_damaged_shard_is_named_and_drawn_again(tmp_path, capsys, damage, why):
    store = make(tmp_path)
    damage(store.path(1))
    assert store.prepare() == [0, 2]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f'warning: {store.path(1)} is truncated or '
                                               'corrupt (') and why in err[0], err
    assert err[0].endswith('drawing it again')
    assert not os.path.exists(store.path(1))


def test_check_reads_every_byte_but_builds_no_array(tmp_path):
    store = make(tmp_path)
    assert check_shard_data(store.path(0), 2) is None
    flip_image_byte(store.path(0))
    with np.load(store.path(0)) as data:
        assert data['meta'] is not None  # the meta alone still reads
    assert 'Bad CRC-32' in check_shard_data(store.path(0), 2)


def test_a_shard_damaged_after_prepare_is_refused_in_one_line(tmp_path):
    store = make(tmp_path)
    assert store.prepare() == [0, 1, 2]
    flip_image_byte(store.path(2))
    with pytest.raises(ValueError, match=r'shard_00002\.npz is truncated or corrupt \(BadZipFile'
                       r'.*\); run the same command again'):
        store.gather()


@pytest.mark.parametrize('text,message', [
    ('{"key": "abc", "run": {', 'is not valid JSON (JSONDecodeError: '),
    (b'\xff\xfe', 'is not valid JSON (UnicodeDecodeError: '),
    ('[1, 2]', "(found a JSON list; expected"),
    ('{"run": {}}', "(found keys 'run'; expected"),
    ('{"key": 3, "run": {}}', "(found keys 'key', 'run'; expected"),
    ('{"key": "abc", "run": []}', "(found keys 'key', 'run'; expected"),
])
def test_a_malformed_run_json_is_refused_in_one_line(tmp_path, text, message):
    store = make(tmp_path, shards=(0, ))
    mode = 'wb' if isinstance(text, bytes) else 'w'
    with open(store.run_file, mode) as f:
        f.write(text)
    with pytest.raises(ValueError) as info:
        store.prepare()
    line = str(info.value)
    assert '\n' not in line and line.startswith(store.run_file) and message in line
    assert line.endswith(f'delete {store.folder} to start over, or write to another --out')
    assert os.path.exists(store.path(0))  # nothing removed


def test_killed_writers_leftovers_are_removed(tmp_path):
    store = make(tmp_path, shards=(0, ))
    leftovers = ['.shard_00001.npz.12345.abcd1234.tmp', '.shard_00000.npz.lock', 'tmpxyz.tmp']
    for name in leftovers:
        open(os.path.join(store.folder, name), 'wb').close()
    assert store.prepare() == [0]
    assert sorted(os.listdir(store.folder)) == ['run.json', 'shard_00000.npz']
    with open(store.run_file) as f:
        assert json.load(f)['key'] == store.key


def test_zip_of_a_foreign_file_is_drawn_again(tmp_path, capsys):
    store = make(tmp_path, shards=(0, ))
    with zipfile.ZipFile(store.path(0), 'w') as zf:
        zf.writestr('meta.npy', b'not npy')
    assert store.prepare() == []
    assert 'shard_00000.npz is truncated or corrupt' in capsys.readouterr().err
