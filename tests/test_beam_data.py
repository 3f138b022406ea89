"""Beam-tracking data: the DeepSense scenario-9 loader (real label CSV; fixture files in the real formats),
the synthetic generator's statistics, the packed window layout, and clear errors for bad input."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from envs.beam import SceneConfig, assemble, generate_frames, generate_sequence, process_sequence, \
    split_sequences, window_starts
from envs.beam.deepsense import load_frames, read_index
from envs.beam.radar import RadarConfig

REAL_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "deepsense_scenario9_labels.csv"
if not REAL_CSV.is_file():
    REAL_CSV = Path("/work/shared/data/deepsense_scenario9_labels.csv")


def test_real_csv_windows_follow_the_seed_split():
    if not REAL_CSV.is_file():
        pytest.skip(f"scenario-9 label CSV not available at {REAL_CSV}")
    idx = read_index(REAL_CSV)
    seqs = np.unique(idx.seq)
    train, test = split_sequences(idx.seq)
    n_train, n_test = len(window_starts(idx.seq, train)), len(window_starts(idx.seq, test))
    # hand count: a sequence of length L gives L - 11 windows (start + 8 + 3 < L)
    lengths = {s: int((idx.seq == s).sum()) for s in seqs}
    assert n_train == sum(lengths[s] - 11 for s in train) and n_test == sum(lengths[s] - 11 for s in test)
    print(f"\nscenario 9: {len(idx)} samples, {len(seqs)} sequences -> {len(train)} train / {len(test)} test "
          f"sequences, {n_train} train / {n_test} test windows ({n_train + n_test} in all)")
    assert (len(idx), len(seqs), len(train), len(test)) == (5964, 136, 95, 41)
    assert (n_train, n_test) == (3201, 1267)
    assert idx.beams.min() == 1 and idx.beams.max() == 62          # 1-based 2..63 in the file -> 0-based


def _write_fixture(root: Path, raws: list, rgb_ext: str = ".png") -> Path:
    """Files in the scenario-9 layout for raw synthetic sequences; returns the label CSV."""
    from PIL import Image
    from scipy.io import savemat

    for sub in ("camera_data", "radar_data", "mmWave_data"):
        (root / "unit1" / sub).mkdir(parents=True, exist_ok=True)
    rows, k = [], 0
    for sid, raw in enumerate(raws, start=1):
        for t in range(len(raw.beams)):
            img = f"./unit1/camera_data/image_{k}{rgb_ext}"
            mat = f"./unit1/radar_data/data_{k}.mat"
            pwr = f"./unit1/mmWave_data/mmWave_power_{k}.txt"
            Image.fromarray(raw.rgb[t]).save(root / img)
            savemat(root / mat, {"data": raw.cubes[t]})
            np.savetxt(root / pwr, raw.powers[t])
            rows.append({"index": k + 1, "unit1_rgb": img, "unit1_pwr_60ghz": pwr, "unit1_radar": mat,
                         "unit1_beam_index": int(raw.beams[t]) + 1, "seq_index": sid})
            k += 1
    path = root / "scenario9.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def fixture_set(tmp_path_factory):
    cfg = SceneConfig(resolution=32, radar_scale=1, seed=3)
    raws = [generate_sequence(cfg, i, length=13 + i) for i in range(2)]
    root = tmp_path_factory.mktemp("scenario9")
    return cfg, raws, _write_fixture(root, raws)


def test_loader_reads_fixture_files_into_the_generators_tensors(fixture_set):
    cfg, raws, path = fixture_set
    frames = load_frames(read_index(path, need_radar=True), "image_radar", resolution=32, radar_scale=1)
    power_frames = load_frames(read_index(path), "image", resolution=32, labels="power")
    masks, radar, beams = [], [], []
    for raw in raws:
        m, r = process_sequence(raw, RadarConfig(scale=1))
        masks.append(m), radar.append(r), beams.append(raw.beams)
    assert np.array_equal(frames.masks, np.concatenate(masks))
    assert frames.radar.shape == (27, 2, 128, 64)
    assert np.array_equal(frames.radar, np.concatenate(radar))
    assert np.array_equal(frames.beams, np.concatenate(beams)) and np.array_equal(power_frames.beams, frames.beams)
    assert frames.masks[1:13].any(axis=(1, 2)).all()                   # the moving car leaves a mask


def test_loader_errors_name_the_file_or_key(fixture_set, tmp_path):
    from scipy.io import savemat

    _, raws, path = fixture_set
    text = path.read_text().splitlines()
    missing = tmp_path / "missing.csv"
    missing.write_text("\n".join([text[0], text[1].replace("image_0.png", "nowhere.jpg")] + text[2:]) + "\n")
    for name in ("unit1", ):
        (tmp_path / name).symlink_to(path.parent / name)
    with pytest.raises(FileNotFoundError, match=r"row 2 names image .*nowhere\.jpg"):
        load_frames(read_index(missing), "image", resolution=32)
    bad = path.parent / "unit1" / "radar_data" / "data_3.mat"
    good = bad.read_bytes()
    try:
        savemat(bad, {"data": np.zeros((4, 128, 128), np.complex64)})
        shape = r"data_3\.mat: radar 'data' has shape \[4, 128, 128\], expected \[4, 256, 128\]"
        with pytest.raises(ValueError, match=shape):
            load_frames(read_index(path, need_radar=True), "image_radar", resolution=32)
    finally:
        bad.write_bytes(good)
    with pytest.raises(ValueError, match=r"unknown modality 'lidar': choose one of image, image_radar"):
        load_frames(read_index(path), "lidar", resolution=32)
    nocol = tmp_path / "nocol.csv"
    nocol.write_text(path.read_text().replace("seq_index", "sequence"))
    with pytest.raises(ValueError, match="missing column.*seq_index"):
        read_index(nocol)


def test_window_longer_than_a_sequence_is_a_clear_error():
    seq = np.repeat([7, 8], [20, 11])
    with pytest.raises(ValueError, match=r"longer than sequence 8 \(11 frames"):
        window_starts(seq)
    assert len(window_starts(seq, seq_ids=[7])) == 20 - 11


def test_packed_window_layout_matches_the_seed():
    cfg = SceneConfig(resolution=16, radar_scale=8, n_sequences=2, seed=1)
    frames = generate_frames(cfg)
    s = int(window_starts(frames.seq)[3])
    x, y = assemble(frames, [s], "image_radar")
    hw = 16 * 16
    assert x.shape == (1, 10, hw + 2 * 16 * 8)
    for t in range(7):                                                   # masks of frames s+1 .. s+7
        assert torch.equal(x[0, t, :hw], torch.from_numpy(frames.masks[s + 1 + t]).flatten().float())
    assert not x[0, 7:, :hw].any()                                       # 3 zero image steps
    for t in range(8):                                                   # radar maps of frames s .. s+7
        assert torch.equal(x[0, t, hw:], torch.from_numpy(frames.radar[s + t]).flatten())
    assert not x[0, 8:, hw:].any()                                       # 2 zero radar steps
    assert y.tolist() == [frames.beams[s + 7: s + 11].tolist()]          # t0 = last input frame, t1..t3


def test_synthetic_statistics_match_scenario9():
    cfg = SceneConfig(resolution=24, radar=False, n_sequences=60, seed=0)
    frames = generate_frames(cfg)
    deltas, firsts, lasts, lengths = [], [], [], []
    for _, first, n in frames.sequences():
        b = frames.beams[first:first + n]
        deltas.append(np.diff(b)), firsts.append(b[0]), lasts.append(b[-1]), lengths.append(n)
    d = np.concatenate(deltas)
    print(f"\nsynthetic: mean |dbeam| {np.abs(d).mean():.2f}, unchanged {np.mean(d == 0):.2f}, rising "
          f"{np.mean(d > 0):.2f}, lengths {min(lengths)}-{max(lengths)} (mean {np.mean(lengths):.1f})")
    assert 1.4 < np.abs(d).mean() < 2.0                  # scenario 9: 1.73
    assert 0.15 < np.mean(d == 0) < 0.35                 # scenario 9: 0.25
    assert np.mean(d > 0) > 8 * np.mean(d < 0)           # scenario 9: 4047 rises vs 300 falls
    assert 30 <= min(lengths) and max(lengths) <= 65
    assert np.median(firsts) < 16 and np.median(lasts) > 58
    again = generate_frames(cfg)
    assert np.array_equal(again.masks, frames.masks) and np.array_equal(again.beams, frames.beams)
    other = generate_frames(SceneConfig(resolution=24, radar=False, n_sequences=2, seed=1))
    assert not np.array_equal(other.beams[:40], frames.beams[:40])


def test_edge_node_knobs_change_the_data():
    base = SceneConfig(resolution=24, radar=False, n_sequences=1, seed=5)
    raw = generate_sequence(base, 0, length=20)
    dark = generate_sequence(SceneConfig(resolution=24, radar=False, n_sequences=1, seed=5, lighting=0.3), 0, length=20)
    assert dark.rgb.mean() < 0.5 * raw.rgb.mean()
    fast = generate_frames(SceneConfig(resolution=24, radar=False, n_sequences=20, seed=5, speed=1.5))
    slow = generate_frames(SceneConfig(resolution=24, radar=False, n_sequences=20, seed=5))
    assert len(fast.beams) < 0.8 * len(slow.beams)
    with pytest.raises(ValueError, match="lanes must be"):
        SceneConfig(lanes=())
