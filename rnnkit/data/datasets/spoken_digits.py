"""Spoken digit strings, synthesised offline by eSpeak NG: the default data of the ``speech`` task.

Connected digit strings of 1 to 7 digits (as TIDIGITS has them), each spoken by a voice variant
of eSpeak NG's US English at a random rate (words per minute), pitch and pitch range, with white
noise at a random signal-to-noise ratio, resampled to 16 kHz and turned into per-utterance
normalised log-mel frames. The split is by voice: the test and validation voices are never heard
in training, so the test error is speaker-independent. Deterministic from the seed; built once
and cached (``rnnkit.data.cache``).
"""

from __future__ import annotations

import numpy as np

from rnnkit.data.audio import SAMPLE_RATE, log_mel, normalize, resample
from rnnkit.data.cache import cached_arrays

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: how many utterances each split has
SPLITS = {"train": 2400, "valid": 200, "test": 300}
#: how many voices the held-out splits draw on (the training split has all the others)
HELD_OUT_VOICES = {"valid": 8, "test": 12}
FORMAT = 1  # bump when anything below changes what is built


def split_voices(voices: list[str], seed: int) -> dict[str, list[str]]:
    """Voices per split, disjoint: a seeded shuffle, the test and validation voices first."""
    order = [voices[i] for i in np.random.default_rng([seed, 7]).permutation(len(voices))]
    test, valid = HELD_OUT_VOICES["test"], HELD_OUT_VOICES["valid"]
    return {"test": order[:test], "valid": order[test : test + valid], "train": order[test + valid :]}


def _utterance(rng: np.random.Generator, voice: str, n_mels: int) -> tuple[list[int], np.ndarray]:
    from rnnkit.data.espeak import synthesize

    digits = [int(d) for d in rng.integers(0, 10, size=int(rng.integers(1, 8)))]
    samples, rate = synthesize(" ".join(DIGIT_WORDS[d] for d in digits), voice, rate=int(rng.integers(130, 211)),
                               pitch=int(rng.integers(25, 76)), pitch_range=int(rng.integers(20, 81)))
    samples = resample(samples, rate, SAMPLE_RATE).astype(np.float64)
    power = float(np.mean(samples**2)) or 1e-8
    snr_db = float(rng.uniform(15.0, 35.0))
    samples = samples + rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), size=samples.shape)
    return digits, normalize(log_mel(samples, n_mels=n_mels))


def load_spoken_digits(seed: int = 0, n_mels: int = 40) -> dict[str, tuple[list[np.ndarray], list[list[int]],
                                                                           list[str]]]:
    """``{split: (frames, digits, voices)}``: per utterance ``(T, n_mels)`` float32 frames, its
    digits, and the voice that spoke it."""
    from rnnkit.data.espeak import voices as all_voices

    voices = all_voices("en-us")
    key = {"format": FORMAT, "seed": seed, "n_mels": n_mels, "voices": voices, "splits": SPLITS,
           "held_out_voices": HELD_OUT_VOICES}

    def build() -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        for split, split_voice_list in split_voices(voices, seed).items():
            rng = np.random.default_rng([seed, list(SPLITS).index(split)])
            frames, digits, spoken_by = [], [], []
            for _ in range(SPLITS[split]):
                voice = split_voice_list[int(rng.integers(len(split_voice_list)))]
                said, features = _utterance(rng, voice, n_mels)
                frames.append(features)
                digits.append(said)
                spoken_by.append(voice)
            arrays[f"{split}_frames"] = np.concatenate(frames)
            arrays[f"{split}_frame_counts"] = np.array([len(f) for f in frames])
            arrays[f"{split}_digits"] = np.array([d for said in digits for d in said])
            arrays[f"{split}_digit_counts"] = np.array([len(said) for said in digits])
            arrays[f"{split}_voices"] = np.array(spoken_by)
        return arrays

    arrays = cached_arrays("speech-digits", key, build)
    out = {}
    for split in SPLITS:
        frame_cuts = np.cumsum(arrays[f"{split}_frame_counts"])[:-1]
        digit_cuts = np.cumsum(arrays[f"{split}_digit_counts"])[:-1]
        out[split] = (np.split(arrays[f"{split}_frames"], frame_cuts),
                      [list(map(int, d)) for d in np.split(arrays[f"{split}_digits"], digit_cuts)],
                      [str(v) for v in arrays[f"{split}_voices"]])
    return out
