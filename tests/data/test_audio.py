"""Audio in (``rnnkit/data/audio.py``): WAV in every PCM and float layout, mono or not, resampling,
and the log-mel front end against librosa's (test-only reference)."""

import struct
import wave

import numpy as np
import pytest

from rnnkit.data.audio import (
    frames,
    hz_to_mel,
    load_audio,
    log_mel,
    mel_filterbank,
    mel_to_hz,
    normalize,
    read_wav,
    resample,
    spec_augment,
)


def _tone(rate: int, seconds: float = 0.5, hz: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    wave_ = 0.5 * np.sin(2 * np.pi * hz * t)
    return np.stack([wave_ * (c + 1) / channels for c in range(channels)], axis=1)  # (N, channels) in [-0.5, 0.5]


def _write_pcm(path, samples: np.ndarray, rate: int, bits: int) -> None:
    scale = float(1 << (bits - 1))
    ints = np.clip(np.round(samples * scale), -scale, scale - 1).astype(np.int64)
    if bits == 8:
        raw = (ints + 128).astype(np.uint8).tobytes()
    elif bits == 24:
        u = ints.reshape(-1) & 0xFFFFFF
        raw = np.stack([u & 0xFF, (u >> 8) & 0xFF, (u >> 16) & 0xFF], axis=1).astype(np.uint8).tobytes()
    else:
        raw = ints.astype("<i2" if bits == 16 else "<i4").tobytes()
    with wave.open(str(path), "wb") as file:
        file.setnchannels(samples.shape[1])
        file.setsampwidth(bits // 8)
        file.setframerate(rate)
        file.writeframes(raw)


def _write_float(path, samples: np.ndarray, rate: int, bits: int, extensible: bool = False) -> None:
    channels = samples.shape[1]
    data = samples.astype("<f4" if bits == 32 else "<f8").tobytes()
    block = channels * bits // 8
    if extensible:
        guid = struct.pack("<H", 3) + bytes.fromhex("000000001000800000aa00389b71")
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22, bits, 0) + guid
    else:
        fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


@pytest.mark.parametrize("bits", [8, 16, 24, 32])
@pytest.mark.parametrize("channels", [1, 2])
def test_integer_pcm_reads_back_within_one_step(tmp_path, bits, channels):
    samples = _tone(8000, channels=channels)
    _write_pcm(tmp_path / "a.wav", samples, 8000, bits)
    got, rate = read_wav(tmp_path / "a.wav")
    assert rate == 8000 and got.dtype == np.float32 and got.shape == (len(samples),)
    np.testing.assert_allclose(got, samples.mean(axis=1), atol=1.0 / (1 << (bits - 1)) + 1e-7)


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("extensible", [False, True])
def test_float_wav_plain_and_extensible(tmp_path, bits, extensible):
    samples = _tone(11025, channels=3)
    _write_float(tmp_path / "f.wav", samples, 11025, bits, extensible)
    got, rate = read_wav(tmp_path / "f.wav")
    assert rate == 11025
    np.testing.assert_allclose(got, samples.mean(axis=1), atol=1e-6)


def test_resampling_keeps_a_tone_and_the_duration():
    for rate in (8000, 22050, 44100, 48000):
        tone = _tone(rate, seconds=1.0, hz=1000.0)[:, 0]
        out = resample(tone, rate, 16000)
        assert out.shape == (16000,)
        spectrum = np.abs(np.fft.rfft(out))
        assert np.argmax(spectrum) == 1000  # 1 Hz bins over one second
        np.testing.assert_allclose(out, _tone(16000, seconds=1.0, hz=1000.0)[:, 0], atol=2e-3)


def test_load_audio_resamples_and_names_bad_files(tmp_path):
    _write_pcm(tmp_path / "a.wav", _tone(8000), 8000, 16)
    assert load_audio(tmp_path / "a.wav").shape == (8000,)  # half a second at 16 kHz
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x04\x00\x00\x00WAVE")
    with pytest.raises(ValueError, match=r"bad.wav: a WAV file needs a fmt and a data chunk; found no fmt"):
        load_audio(tmp_path / "bad.wav")
    with pytest.raises(ValueError, match=r"nothing.wav: no such file"):
        load_audio(tmp_path / "nothing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.wav: (not WAV|unreadable audio)"):
        load_audio(tmp_path / "empty.wav")
    _write_pcm(tmp_path / "silent.wav", np.zeros((0, 1)), 8000, 16)
    with pytest.raises(ValueError, match=r"silent.wav: no samples"):
        load_audio(tmp_path / "silent.wav")
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 8000 * 2, 2, 12)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", 2) + b"\x00\x00"
    (tmp_path / "odd.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(ValueError, match=r"odd.wav: integer PCM of 12 bits is not supported"):
        read_wav(tmp_path / "odd.wav")


def test_the_mel_scale_and_filterbank():
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(np.array([0.0, 700.0, 8000.0]))), [0.0, 700.0, 8000.0])
    assert hz_to_mel(700.0) == pytest.approx(2595.0 * np.log10(2.0))
    bank = mel_filterbank(40, 512, 16000)
    assert bank.shape == (40, 257) and bank.max() <= 1.0 and (bank >= 0).all()
    assert (bank.sum(axis=1) > 0).all()  # no empty filter at 40 mels over 257 bins


def test_frames_are_views_and_drop_the_partial_frame():
    x = np.arange(10.0)
    f = frames(x, 4, 3)
    assert f.shape == (3, 4) and f[2].tolist() == [6.0, 7.0, 8.0, 9.0]
    assert frames(x, 11, 3).shape == (0, 11)


@pytest.mark.parametrize("n_mels", [40, 80])
def test_log_mel_equals_librosa(n_mels):
    """librosa's melspectrogram with the same settings (HTK mel, no filter normalisation, power
    2, periodic Hann of 400 samples inside 512, no centring); its frames start 56 samples before
    ours (the window centred in n_fft), so it reads the signal padded by 56 each side."""
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    samples = rng.normal(size=16000) * 0.1 + _tone(16000, 1.0, 300.0)[:, 0]
    ours = log_mel(samples, n_mels=n_mels, fmin=20.0, floor=1e-10).astype(np.float64)
    mel = librosa.feature.melspectrogram(y=np.pad(samples, 56), sr=16000, n_fft=512, hop_length=160, win_length=400,
                                         window="hann", center=False, power=2.0, n_mels=n_mels, fmin=20.0,
                                         fmax=8000.0, htk=True, norm=None)
    theirs = np.log(np.maximum(mel.T, 1e-10))
    assert ours.shape == theirs.shape == (98, n_mels)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)  # ours is float32: |log| < 20, 2^-24 relative


def test_log_mel_errors():
    with pytest.raises(ValueError, match=r"samples: expected mono"):
        log_mel(np.zeros((10, 2)))
    with pytest.raises(ValueError, match=r"samples: 100 samples make no 25 ms frame at 16000 Hz"):
        log_mel(np.zeros(100))
    with pytest.raises(ValueError, match=r"n_fft: expected at least the window's 400 samples"):
        log_mel(np.zeros(1000), n_fft=256)


def test_normalize_and_spec_augment():
    rng = np.random.default_rng(1)
    features = rng.normal(3.0, 2.0, size=(200, 40)).astype(np.float32)
    normal = normalize(features)
    np.testing.assert_allclose(normal.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(normal.std(axis=0), 1.0, atol=1e-3)
    masked = spec_augment(normal, np.random.default_rng(2), time_masks=2, time_width=20, freq_masks=2, freq_width=8)
    assert masked.shape == normal.shape and not np.shares_memory(masked, normal)
    changed = masked != normal
    rows, columns = changed.all(axis=1).sum(), changed.all(axis=0).sum()
    assert 0 < rows <= 40 and 0 < columns <= 16  # whole steps and whole bins, within the widths
    assert np.array_equal(spec_augment(normal, np.random.default_rng(2), 2, 20, 2, 8), masked)  # seeded
