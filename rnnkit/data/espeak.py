"""Speech synthesised offline by eSpeak NG, for spoken data that needs no download.

The ``espeakng-loader`` package (an extra: ``pip install "rnnkit[speech]"``) ships
``libespeak-ng.so`` and the voice data; this module drives the library through ctypes in its
synchronous mode: the samples arrive through a callback, 16-bit at the library's rate (22,050
Hz), and are returned as float32 in ``[-1, 1]``. A voice is a language and a variant
(``"en-us+Alex"``); rate (words per minute), pitch and pitch range (0-100) vary a speaker
further. The library keeps one global state: calls are serialised by a lock.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

import numpy as np

_RATE, _PITCH, _RANGE = 1, 3, 4  # espeak_PARAMETER
_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS
_POSITION_CHARACTER = 1
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_lock = threading.Lock()
_state: dict[str, Any] = {}


def _library() -> tuple[ctypes.CDLL, int]:
    """The initialised library and its sample rate (loaded once)."""
    if "library" not in _state:
        try:
            import espeakng_loader
        except ImportError:
            raise ImportError('synthesised speech needs eSpeak NG: pip install "rnnkit[speech]" '
                              "(the espeakng-loader package)") from None
        library = ctypes.CDLL(espeakng_loader.get_library_path())
        library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        library.espeak_Initialize.restype = ctypes.c_int
        library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        library.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        library.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                         ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        rate = library.espeak_Initialize(_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        if rate <= 0:
            raise RuntimeError(f"eSpeak NG did not initialise (it returned {rate})")
        chunks: list[np.ndarray] = []

        def collect(samples, count, events):  # called by espeak_Synth, on this thread
            if samples and count > 0:
                chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
            return 0

        callback = _CALLBACK(collect)
        library.espeak_SetSynthCallback(callback)
        _state.update(library=library, rate=rate, chunks=chunks, callback=callback)  # the callback must stay alive
    return _state["library"], int(_state["rate"])


def voices(language: str = "en-us") -> list[str]:
    """``language+variant`` for every variant the installed voice data has, sorted."""
    import espeakng_loader

    folder = os.path.join(espeakng_loader.get_data_path(), "voices", "!v")
    return [f"{language}+{name}" for name in sorted(os.listdir(folder)) if " " not in name]


def synthesize(text: str, voice: str = "en-us", rate: int = 170, pitch: int = 50,
               pitch_range: int = 50) -> tuple[np.ndarray, int]:
    """``(samples, sample_rate)``: ``text`` spoken by ``voice`` at ``rate`` words per minute, with
    ``pitch`` and ``pitch_range`` in 0..100."""
    library, sample_rate = _library()
    with _lock:
        chunks: list[np.ndarray] = _state["chunks"]
        chunks.clear()
        if library.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"voice: eSpeak NG has no voice {voice!r}")
        for parameter, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range)):
            library.espeak_SetParameter(parameter, int(value), 0)
        data = text.encode()
        status = library.espeak_Synth(data, len(data) + 1, 0, _POSITION_CHARACTER, 0, 0, None, None)
        if status != 0:
            raise RuntimeError(f"eSpeak NG could not speak {text!r} (error {status})")
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return (samples.astype(np.float32) / 32768.0), sample_rate
