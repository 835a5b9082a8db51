"""Results of the package are byte-identical to the CLI's on the same inputs."""
import os
import warnings

import numpy as np
import pytest

import vahanorm

REAL = [
    "histolab_tcga-lung-rgb.png",
    "vahadane_source1.png",
    "torchstain_source.png",
    "openslide-OS-1_hamamatsu-ndpi_crop.png",
]


def test_fit_writes_the_same_file(cli, tiles, tmp_path):
    ref = os.path.join(tiles, "tiatoolbox_target_image.png")
    cli("fit", "--ref", ref, "-o", tmp_path / "cli.json")
    vahanorm.fit(ref).save(tmp_path / "py.json")
    assert (tmp_path / "py.json").read_bytes() == (tmp_path / "cli.json").read_bytes()


def test_fit_pools_several_references_like_the_cli(cli, tiles, tmp_path):
    refs = [os.path.join(tiles, n) for n in ("vahadane_target1.png", "vahadane_target2.png")]
    cli("fit", "--ref", refs[0], "--ref", refs[1], "-o", tmp_path / "cli.json")
    vahanorm.fit(refs, threads=1).save(tmp_path / "py.json")
    assert (tmp_path / "py.json").read_bytes() == (tmp_path / "cli.json").read_bytes()


def test_fit_on_an_array_gives_the_files_model(tiles):
    ref = os.path.join(tiles, "tiatoolbox_target_image.png")
    a = vahanorm.fit(vahanorm.read_image(ref))
    b = vahanorm.fit(ref)
    np.testing.assert_array_equal(a.stain_matrix, b.stain_matrix)
    np.testing.assert_array_equal(a.max_concentrations, b.max_concentrations)
    assert a.source["path"] == "<array>" and b.source["path"] == ref


def test_estimate_writes_the_same_file(cli, tiles, tmp_path):
    src = os.path.join(tiles, "vahadane_source2.png")
    cli("estimate", src, "-o", tmp_path / "cli.json")
    vahanorm.estimate(src).save(tmp_path / "py.json")
    assert (tmp_path / "py.json").read_bytes() == (tmp_path / "cli.json").read_bytes()


def test_estimate_of_a_slide_is_the_clis(cli, slides, tmp_path):
    slide = os.path.join(slides, "CMU-1-Small-Region.svs")
    cli("estimate", slide, "-o", tmp_path / "cli.json")
    vahanorm.estimate(slide).save(tmp_path / "py.json")
    assert (tmp_path / "py.json").read_bytes() == (tmp_path / "cli.json").read_bytes()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", REAL)
def test_per_tile_transform_matches_cli(cli, tiles, target_file, tmp_path, name, threads):
    src = os.path.join(tiles, name)
    out = tmp_path / ("cli_" + name)
    cli("apply", src, "--target", target_file, "-o", out, "--threads", threads)
    norm = vahanorm.Normalizer(target=target_file, threads=threads)
    got = norm.transform(vahanorm.read_image(src))
    np.testing.assert_array_equal(got, vahanorm.read_image(out))


def test_fixed_source_transform_matches_cli(cli, tiles, target_file, tmp_path):
    src = os.path.join(tiles, "vahadane_source1.png")
    cli("estimate", os.path.join(tiles, "vahadane_source2.png"), "-o", tmp_path / "source.json")
    cli("apply", src, "--target", target_file, "--source-model", tmp_path / "source.json", "-o", tmp_path / "cli.png")
    norm = vahanorm.Normalizer(target=target_file, source=tmp_path / "source.json")
    np.testing.assert_array_equal(norm.transform(vahanorm.read_image(src)), vahanorm.read_image(tmp_path / "cli.png"))


def test_synthetic_pair_and_builtin_target_match_cli(cli, samples, tmp_path):
    ref, src = samples
    # No --target, no $VAHANORM_TARGET, no ./target.json: the CLI takes the built-in reference.
    cli("apply", src, "-o", tmp_path / "builtin.png", cwd=tmp_path)
    got = vahanorm.Normalizer().transform(vahanorm.read_image(src))
    np.testing.assert_array_equal(got, vahanorm.read_image(tmp_path / "builtin.png"))
    cli("fit", "--ref", ref, "-o", tmp_path / "t.json")
    cli("apply", src, "--target", tmp_path / "t.json", "-o", tmp_path / "fitted.png")
    got = vahanorm.Normalizer(target=ref).transform(vahanorm.read_image(src))
    np.testing.assert_array_equal(got, vahanorm.read_image(tmp_path / "fitted.png"))


def test_rgba_array_is_composited_like_the_cli_reads_rgba_png(cli, tmp_path, tile):
    # An RGBA tile with a partly transparent column pattern, written as an RGBA PNG.
    import struct
    import zlib

    rgba = np.dstack([tile[:128, :128], np.where(np.arange(128) % 7 == 0, 0, np.where(np.arange(128) % 5 == 0, 128, 255))
                      .astype(np.uint8)[None, :].repeat(128, 0)])
    raw = b"".join(b"\x00" + rgba[y].tobytes() for y in range(128))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = tmp_path / "rgba.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 128, 128, 8, 6, 0, 0, 0)) +
                    chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    cli("apply", png, "-o", tmp_path / "out.png", cwd=tmp_path)
    got = vahanorm.Normalizer().transform(rgba)
    np.testing.assert_array_equal(got, vahanorm.read_image(tmp_path / "out.png"))


def test_blank_tile_passes_through_with_a_warning_like_the_cli(cli, tiles, target_file, tmp_path):
    blank = os.path.join(tiles, "edge_histolab_almost-white-2.png")
    p = cli("apply", blank, "--target", target_file, "-o", tmp_path / "out.png")
    assert "passed through unchanged" in p.stderr
    img = vahanorm.read_image(blank)
    with pytest.warns(vahanorm.BlankTileWarning, match="passed through unchanged: .*tissue"):
        got = vahanorm.Normalizer(target=target_file).transform(img)
    np.testing.assert_array_equal(got, img)
    np.testing.assert_array_equal(got, vahanorm.read_image(tmp_path / "out.png"))


def test_apply_tiles_writes_the_clis_files_and_records(cli, tiles, target_file, tmp_path):
    names = ["vahadane_source1.png", "torchstain_source.png", "edge_histolab_almost-white-2.png"]
    inputs = [os.path.join(tiles, n) for n in names]
    cli("apply", *inputs, "--target", target_file, "-o", str(tmp_path / "cli") + "/", "--report", tmp_path / "r.json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = vahanorm.apply_tiles(inputs, tmp_path / "py", target=target_file)
    assert [issubclass(w.category, vahanorm.BlankTileWarning) for w in caught] == [True]
    import json

    cli_records = json.loads((tmp_path / "r.json").read_text())["inputs"]
    for n, rec, cli_rec in zip(names, records, cli_records):
        assert (tmp_path / "py" / n).read_bytes() == (tmp_path / "cli" / n).read_bytes(), n
        assert rec["status"] == cli_rec["status"]
        for key in ("source_model", "qc", "size", "message"):
            assert rec.get(key) == cli_rec.get(key), (n, key)
    assert [r["status"] for r in records] == ["ok", "ok", "passed-through"]


def test_apply_tiles_records_a_failed_input_and_goes_on(tiles, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    good = os.path.join(tiles, "vahadane_source1.png")
    records = vahanorm.apply_tiles([str(bad), good], tmp_path / "out")
    assert records[0]["status"] == "failed" and records[0]["exit_code"] == 66 and str(bad) in records[0]["message"]
    assert records[1]["status"] == "ok" and (tmp_path / "out" / "vahadane_source1.png").exists()
    assert not (tmp_path / "out" / "broken.png").exists()


def test_apply_slide_matches_cli(cli, slides, target_file, tmp_path):
    import json

    slide = os.path.join(slides, "CMU-1-Small-Region.svs")
    cli("apply", slide, "--target", target_file, "-o", tmp_path / "cli.tif", "--report", tmp_path / "r.json",
        "--threads", 2)
    rec = vahanorm.apply_slide(slide, tmp_path / "py.tif", target=target_file, threads=2)
    cli_rec = json.loads((tmp_path / "r.json").read_text())["inputs"][0]
    assert rec["status"] == "ok" == cli_rec["status"]
    assert set(rec) == set(cli_rec)
    for key in ("source_model", "qc", "slide", "kind"):
        assert rec[key] == cli_rec[key], key
    assert (tmp_path / "py.tif").read_bytes() == (tmp_path / "cli.tif").read_bytes()


def test_apply_slide_failures_raise_with_the_clis_message(cli, slides, tmp_path):
    fluorescence = os.path.join(slides, "stritt_test3-DAPI-2-387.ndpi")
    p = cli("apply", fluorescence, "-o", tmp_path / "cli.tif", expect=65, cwd=tmp_path)
    msg = [l for l in p.stderr.splitlines() if l.startswith("error: ")][0][len("error: "):]
    with pytest.raises(vahanorm.DataError) as e:
        vahanorm.apply_slide(fluorescence, tmp_path / "py.tif")
    assert str(e.value) == msg
    assert not (tmp_path / "py.tif").exists()
    with pytest.raises(vahanorm.InputError, match="not a whole slide"):
        vahanorm.apply_slide(os.path.join(os.path.dirname(slides), "tiles", "vahadane_source1.png"), tmp_path / "x.tif")


def test_apply_tiles_never_overwrites_an_input(tiles, tmp_path):
    import shutil

    src = tmp_path / "t.png"
    shutil.copy(os.path.join(tiles, "vahadane_source2.png"), src)
    before = src.read_bytes()
    records = vahanorm.apply_tiles([src], tmp_path)
    assert records[0]["status"] == "failed" and records[0]["exit_code"] == 73
    assert records[0]["message"] == f"{tmp_path}/t.png: output would overwrite its input; choose another output"
    assert src.read_bytes() == before
    with pytest.raises(vahanorm.UsageError, match="would both write"):
        vahanorm.apply_tiles([src, tmp_path / "sub" / "t.png"], tmp_path / "out")
