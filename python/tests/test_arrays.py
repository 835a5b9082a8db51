"""Arrays in: any strides, read-only, batches; outputs repeatable bit for bit."""
import numpy as np
import pytest

import vahanorm


@pytest.fixture(scope="module", params=["per-tile", "fixed"])
def norm(request, target_file, tile):
    if request.param == "per-tile":
        return vahanorm.Normalizer(target=target_file, threads=2)
    return vahanorm.Normalizer(target=target_file, source=vahanorm.estimate(tile), threads=2)


def views(tile):
    big = np.zeros((600, 1100, 3), np.uint8)
    big[:512, :1024:2] = tile  # every other column
    rgba = np.dstack([tile, np.full(tile.shape[:2], 255, np.uint8)])
    fortran = np.asfortranarray(tile)
    readonly = tile.copy()
    readonly.flags.writeable = False
    return {
        "crop (packed rows, no copy)": tile[37:300, 11:400],
        "every other column": big[:512, :1024:2],
        "every other row and column": tile[::2, ::2],
        "transposed": tile.transpose(1, 0, 2),
        "flipped (negative strides)": tile[::-1, ::-1],
        "BGR view": tile[:, :, ::-1],
        "Fortran order": fortran,
        "read-only": readonly,
        "opaque RGBA": rgba,
    }


@pytest.mark.parametrize("kind", list(views(np.zeros((512, 512, 3), np.uint8))))
def test_strided_views_equal_their_contiguous_copies(norm, tile, kind):
    v = views(tile)[kind]
    before = np.array(v, copy=True)
    got = norm.transform(v)
    contiguous = np.ascontiguousarray(v[:, :, :3])
    np.testing.assert_array_equal(got, norm.transform(contiguous))
    np.testing.assert_array_equal(v, before)  # the input is never changed
    assert got.shape == v.shape[:2] + (3,) and got.dtype == np.uint8 and got.flags.c_contiguous
    assert not np.array_equal(got, contiguous)  # something was normalized


def test_batch_equals_single_tiles(target_file, tiles, tile):
    import os

    other = vahanorm.read_image(os.path.join(tiles, "vahadane_source1.png"))[:512, :512]
    blank = vahanorm.read_image(os.path.join(tiles, "edge_histolab_almost-white-2.png"))[:512, :512]
    assert blank.shape == tile.shape and other.shape == tile.shape
    batch = np.stack([tile, other, blank, tile[::-1]])
    for threads in (1, 2):
        norm = vahanorm.Normalizer(target=target_file, threads=threads)
        with pytest.warns(vahanorm.BlankTileWarning, match="tile 2: passed through unchanged"):
            out = norm.transform_batch(batch)
        assert out.shape == batch.shape
        for i in (0, 1, 3):
            np.testing.assert_array_equal(out[i], norm.transform(batch[i]))
        np.testing.assert_array_equal(out[2], blank)
    # A strided batch (every other tile, every other row).
    norm = vahanorm.Normalizer(target=target_file, threads=2)
    strided = np.stack([tile, tile, other, other])[::2, ::2]
    out = norm.transform_batch(strided)
    np.testing.assert_array_equal(out[1], norm.transform(other[::2]))


def test_fixed_model_batch_equals_single_tiles(target_file, tile):
    norm = vahanorm.Normalizer(target=target_file, source=vahanorm.Model.builtin(), threads=2)
    batch = np.stack([tile, tile[::-1], tile[:, ::-1]])
    out = norm.transform_batch(batch)
    for i in range(3):
        np.testing.assert_array_equal(out[i], norm.transform(batch[i]))


def test_repeatable_bit_for_bit_across_calls_and_thread_counts(target_file, tile):
    outs = [vahanorm.Normalizer(target=target_file, threads=t).transform(tile) for t in (1, 2, 3, 1)]
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    n = vahanorm.Normalizer(target=target_file, threads=2)
    np.testing.assert_array_equal(n.transform(tile), n.transform(tile))
    m1 = vahanorm.estimate(tile, threads=1)
    m2 = vahanorm.estimate(tile, threads=2)
    assert m1.to_json() == m2.to_json()


def test_estimation_parameters_reach_the_core(tile):
    a = vahanorm.estimate(tile)
    b = vahanorm.estimate(tile, seed=7, sample_size=5000, lambda_=0.2)
    assert b.params["seed"] == 7 and b.params["sample_size"] == 5000 and b.params["lambda"] == 0.2
    assert not np.array_equal(a.stain_matrix, b.stain_matrix)


def test_write_and_read_image_round_trip(tmp_path, tile):
    vahanorm.write_image(tmp_path / "t.png", tile[::2])
    np.testing.assert_array_equal(vahanorm.read_image(tmp_path / "t.png"), tile[::2])
