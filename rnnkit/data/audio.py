"""Audio in: reading sound files, resampling to 16 kHz, and log-mel features, in NumPy.

``read_wav`` parses RIFF/WAVE itself: integer PCM of 8, 16, 24 or 32 bits, IEEE float of 32 or
64 bits, plain or WAVE_FORMAT_EXTENSIBLE, any number of channels (mixed down to mono by their
mean). ``load_audio`` reads WAV that way and other formats (FLAC, OGG, MP3, ...) through the
``soundfile`` package when it is installed (``pip install "rnnkit[speech]"``), then resamples to
the rate asked for.

``log_mel`` is the filterbank front end of speech recognisers (Kaldi's ``fbank``, torchaudio's,
librosa's with ``htk=True``): frames of 25 ms every 10 ms, a Hann window, the power spectrum of
an ``n_fft``-point FFT, triangular filters equally spaced on the HTK mel scale, the log. Frames
are time-major ``(T, n_mels)``, as every sequence is in rnnkit. ``normalize`` subtracts each
utterance's mean and divides by its standard deviation per mel bin (CMVN); ``spec_augment``
masks random bands of time steps and of mel bins (Park et al. 2019), for training only.
"""

from __future__ import annotations

import os
import struct

import numpy as np

SAMPLE_RATE = 16_000
_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """``(samples, rate)``: a WAV file as float32 mono samples in ``[-1, 1]`` and its sample rate."""
    with open(path, "rb") as file:
        data = file.read()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a WAV file (no RIFF/WAVE header)")
    position, fmt, samples = 12, None, None
    while position + 8 <= len(data):
        chunk, size = data[position : position + 4], struct.unpack("<I", data[position + 4 : position + 8])[0]
        body = data[position + 8 : position + 8 + size]
        if chunk == b"fmt ":
            if len(body) < 16:
                raise ValueError(f"{path}: its fmt chunk has {len(body)} bytes, expected at least 16")
            fmt = struct.unpack("<HHIIHH", body[:16]) + ((body[24:26],) if len(body) >= 26 else (b"",))
        elif chunk == b"data":
            samples = body
        position += 8 + size + (size & 1)  # chunks are padded to even sizes
    if fmt is None or samples is None:
        raise ValueError(f"{path}: a WAV file needs a fmt and a data chunk; found {'no fmt' if fmt is None else 'no data'}")
    tag, channels, rate, _, block, bits, sub = fmt
    if tag == _EXTENSIBLE:
        tag = struct.unpack("<H", sub)[0] if len(sub) == 2 else 0
    if channels < 1 or rate < 1:
        raise ValueError(f"{path}: {channels} channels at {rate} Hz")
    width = bits // 8
    if (tag, bits) not in ((_PCM, 8), (_PCM, 16), (_PCM, 24), (_PCM, 32), (_FLOAT, 32), (_FLOAT, 64)):
        kind = {_PCM: "integer PCM", _FLOAT: "float"}.get(tag, f"format tag {tag}")
        raise ValueError(f"{path}: {kind} of {bits} bits is not supported (expected PCM of 8, 16, 24 or 32 bits, "
                         f"or float of 32 or 64)")
    frames = len(samples) // (width * channels)
    raw = np.frombuffer(samples[: frames * width * channels], np.uint8)
    if tag == _FLOAT:
        values = raw.view("<f4" if bits == 32 else "<f8").astype(np.float64)
    elif bits == 8:  # unsigned, centred at 128
        values = (raw.astype(np.float64) - 128.0) / 128.0
    elif bits == 24:  # three bytes, little-endian, sign-extended from the top byte
        triples = raw.reshape(-1, 3).astype(np.int32)
        values = (triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)).astype(np.int64)
        values = np.where(values >= 1 << 23, values - (1 << 24), values) / float(1 << 23)
    else:
        values = raw.view("<i2" if bits == 16 else "<i4").astype(np.float64) / float(1 << (bits - 1))
    mono = values.reshape(frames, channels).mean(axis=1)
    return mono.astype(np.float32), int(rate)


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """``samples`` at ``rate`` Hz, band-limited and resampled to ``target`` Hz by the FFT (the
    spectrum truncated or zero-padded): exact for content below both Nyquist frequencies."""
    samples = np.asarray(samples, np.float64)
    if rate == target or samples.size == 0:
        return samples.astype(np.float32)
    length = int(round(samples.size * target / rate))
    spectrum = np.fft.rfft(samples)
    bins = length // 2 + 1
    resized = np.zeros(bins, complex)
    keep = min(bins, spectrum.size)
    resized[:keep] = spectrum[:keep]
    if keep == bins and length % 2 == 0 and spectrum.size > bins:  # the new Nyquist bin stands for both signs
        resized[-1] = resized[-1].real
    return (np.fft.irfft(resized, n=length) * (length / samples.size)).astype(np.float32)


def load_audio(path: str | os.PathLike, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A sound file as float32 mono samples at ``rate`` Hz: WAV read here, other formats through
    ``soundfile``."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    with open(path, "rb") as file:
        head = file.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        samples, native = read_wav(path)
    else:
        try:
            import soundfile
        except ImportError:
            raise ValueError(f"{path}: not WAV; reading FLAC, OGG or MP3 needs soundfile: "
                             'pip install "rnnkit[speech]"') from None
        try:
            data, native = soundfile.read(path, dtype="float32", always_2d=True)
        except Exception as error:  # soundfile raises its own error types; one line names the file
            raise ValueError(f"{path}: unreadable audio ({error})") from None
        samples = data.mean(axis=1).astype(np.float32)
    if samples.size == 0:
        raise ValueError(f"{path}: no samples")
    if not np.isfinite(samples).all():
        raise ValueError(f"{path}: NaN or inf among its samples")
    return resample(samples, native, rate)


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """The HTK mel scale, ``2595 log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, n_fft: int, rate: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """``(n_mels, n_fft // 2 + 1)`` triangular filters, their corners equally spaced in mel
    between ``fmin`` and ``fmax`` (default: half the rate), each peaking at 1 (no area norm)."""
    fmax = rate / 2 if fmax is None else fmax
    corners = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    frequencies = np.linspace(0.0, rate / 2, n_fft // 2 + 1)
    lower, centre, upper = corners[:-2, None], corners[1:-1, None], corners[2:, None]
    rising = (frequencies[None, :] - lower) / (centre - lower)
    falling = (upper - frequencies[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def frames(samples: np.ndarray, window: int, hop: int) -> np.ndarray:
    """``(T, window)`` overlapping frames every ``hop`` samples (views); the last partial frame is
    dropped (``T = 1 + (N - window) // hop``; none when ``N < window``)."""
    samples = np.ascontiguousarray(samples)
    count = 0 if samples.size < window else 1 + (samples.size - window) // hop
    return np.lib.stride_tricks.as_strided(samples, (count, window), (samples.strides[0] * hop, samples.strides[0]),
                                           writeable=False)


def log_mel(samples: np.ndarray, rate: int = SAMPLE_RATE, n_mels: int = 80, window_ms: float = 25.0,
            hop_ms: float = 10.0, n_fft: int | None = None, fmin: float = 20.0, fmax: float | None = None,
            floor: float = 1e-10) -> np.ndarray:
    """``(T, n_mels)`` float32 log mel energies of mono ``samples``: Hann-windowed frames of
    ``window_ms`` every ``hop_ms``, the power spectrum of an ``n_fft``-point FFT (default: the
    next power of two), ``n_mels`` HTK-mel triangular filters from ``fmin`` to ``fmax``, then
    ``log(max(energy, floor))``."""
    samples = np.asarray(samples, np.float64)
    if samples.ndim != 1:
        raise ValueError(f"samples: expected mono (N,), got shape {samples.shape}")
    window, hop = int(round(rate * window_ms / 1000)), int(round(rate * hop_ms / 1000))
    n_fft = n_fft or 1 << (window - 1).bit_length()
    if n_fft < window:
        raise ValueError(f"n_fft: expected at least the window's {window} samples, got {n_fft}")
    framed = frames(samples, window, hop)
    if len(framed) == 0:
        raise ValueError(f"samples: {samples.size} samples make no {window_ms:g} ms frame at {rate} Hz")
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window) / window)  # periodic, as librosa's and torch's
    power = np.abs(np.fft.rfft(framed * hann, n=n_fft, axis=-1)) ** 2
    energy = power @ mel_filterbank(n_mels, n_fft, rate, fmin, fmax).T
    return np.log(np.maximum(energy, floor)).astype(np.float32)


def normalize(features: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Per-utterance mean and variance normalisation over time of ``(T, F)`` features."""
    features = np.asarray(features)
    mean = features.mean(axis=0, keepdims=True)
    std = features.std(axis=0, keepdims=True)
    return ((features - mean) / (std + eps)).astype(features.dtype)


def spec_augment(features: np.ndarray, rng: np.random.Generator, time_masks: int = 2, time_width: int = 20,
                 freq_masks: int = 2, freq_width: int = 10, value: float = 0.0) -> np.ndarray:
    """A copy of ``(T, F)`` features with ``time_masks`` bands of up to ``time_width`` steps (at
    most a fifth of the utterance each) and ``freq_masks`` bands of up to ``freq_width`` mel bins
    set to ``value`` (0: the mean, after :func:`normalize`)."""
    out = np.array(features, copy=True)
    steps, bins = out.shape
    for _ in range(freq_masks):
        width = int(rng.integers(0, min(freq_width, bins) + 1))
        start = int(rng.integers(0, bins - width + 1))
        out[:, start : start + width] = value
    for _ in range(time_masks):
        width = int(rng.integers(0, min(time_width, max(1, steps // 5)) + 1))
        start = int(rng.integers(0, steps - width + 1))
        out[start : start + width] = value
    return out
