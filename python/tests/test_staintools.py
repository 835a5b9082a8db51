"""The StainTools spelling: existing code changes one import line."""
import numpy as np
import pytest

import vahanorm
from vahanorm import staintools


def test_stain_normalizer_is_the_per_tile_normalizer(tiles, tile):
    import os

    target = staintools.read_image(os.path.join(tiles, "tiatoolbox_target_image.png"))
    n = staintools.StainNormalizer(method="vahadane")
    n.fit(target)
    out = n.transform(tile)
    np.testing.assert_array_equal(out, vahanorm.Normalizer(target=vahanorm.fit(target)).transform(tile))
    np.testing.assert_array_equal(n.stain_matrix_target, vahanorm.fit(target).stain_matrix)
    assert out.dtype == np.uint8 and out.shape == tile.shape


def test_other_methods_and_unfitted_use_are_refused(tile):
    with pytest.raises(vahanorm.UsageError, match="vahadane"):
        staintools.StainNormalizer(method="macenko")
    with pytest.raises(vahanorm.UsageError, match="fit"):
        staintools.StainNormalizer().transform(tile)
