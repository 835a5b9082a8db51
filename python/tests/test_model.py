"""Model: the CLI's schema, round trips, pickling."""
import copy
import json
import pickle

import numpy as np
import pytest

import vahanorm


def test_a_cli_model_file_round_trips_exactly(target_file, tmp_path):
    text = open(target_file).read()
    m = vahanorm.Model.load(target_file)
    assert m.to_json() == text
    m.save(tmp_path / "copy.json")
    assert (tmp_path / "copy.json").read_text() == text
    assert vahanorm.Model.from_json(text) == m
    d = json.loads(text)
    np.testing.assert_array_equal(m.stain_matrix, np.array(d["stain_matrix"]))
    np.testing.assert_array_equal(m.max_concentrations, np.array(d["max_concentrations"]))
    assert m.params == d["params"] and m.source == d["source"]
    assert m.stain_matrix.shape == (2, 3) and m.max_concentrations.shape == (2,)


def test_pickle_and_copy(target_file, tile):
    for m in (vahanorm.Model.load(target_file), vahanorm.estimate(tile), vahanorm.Model.builtin()):
        for p in range(pickle.HIGHEST_PROTOCOL + 1):
            back = pickle.loads(pickle.dumps(m, protocol=p))
            assert back == m and back.to_json() == m.to_json() and hash(back) == hash(m)
        assert copy.deepcopy(m) == m


def test_models_are_immutable_and_comparable(target_file):
    m = vahanorm.Model.load(target_file)
    with pytest.raises(AttributeError):
        m.stain_matrix = np.eye(2, 3)  # type: ignore[misc]
    assert m != vahanorm.Model.builtin()
    assert "Model(H=[" in repr(m)


def test_a_model_by_hand_transforms_like_its_file(tmp_path, tile):
    ref = vahanorm.Model.builtin()
    m = vahanorm.Model(ref.stain_matrix, ref.max_concentrations * 1.1, params={"lambda_concentration": 0.01},
                       source={"path": "by hand"})
    assert m.source["path"] == "by hand"
    m.save(tmp_path / "m.json")
    a = vahanorm.Normalizer(target=m, threads=1).transform(tile)
    b = vahanorm.Normalizer(target=str(tmp_path / "m.json"), threads=1).transform(tile)
    np.testing.assert_array_equal(a, b)
    c = vahanorm.Normalizer(target=ref, threads=1).transform(tile)
    assert not np.array_equal(a, c)


def test_a_model_by_hand_keeps_its_source_counts_through_save_and_load(tmp_path):
    ref = vahanorm.Model.builtin()
    source = {"path": "by hand", "tissue_pixels": 412345, "sampled_pixels": 100000, "ink_artefact_pixels": 321}
    m = vahanorm.Model(ref.stain_matrix, ref.max_concentrations, source=source)
    assert {k: m.source[k] for k in source} == source
    m.save(tmp_path / "m.json")
    back = vahanorm.Model.load(tmp_path / "m.json")
    assert back == m and back.source["sampled_pixels"] == 100000
    again = vahanorm.Model(back.stain_matrix, back.max_concentrations, source=back.source)
    assert again.to_json() == m.to_json()
    for bad in (-1, 1.5, "100", None):
        with pytest.raises(vahanorm.DataError, match=r'"source.sampled_pixels" must be a non-negative integer'):
            vahanorm.Model(ref.stain_matrix, ref.max_concentrations, source={"sampled_pixels": bad})


def test_builtin_reference_has_the_model_file_schema():
    m = vahanorm.Model.builtin()
    d = json.loads(m.to_json())
    assert d["format"] == "vahanorm-model" and d["version"] == 1 and d["method"] == "vahadane"
    assert set(d) >= {"stain_matrix", "max_concentrations", "params", "source"}
    assert m.max_concentrations.tolist() == [1.9705, 1.0308]
    assert 20 < m.stain_angle_deg < 25


def test_normalizers_pickle(target_file, tile):
    n = vahanorm.Normalizer(target=target_file, threads=1)
    expected = n.transform(tile)
    back = pickle.loads(pickle.dumps(n))
    np.testing.assert_array_equal(back.transform(tile), expected)
    f = vahanorm.Normalizer(target=target_file, source=vahanorm.Model.builtin(), threads=1)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(f)).transform(tile), f.transform(tile))
