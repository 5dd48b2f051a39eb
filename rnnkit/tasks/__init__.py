"""The tasks of the ``rnnkit`` command: one file each, loaded only when asked for."""

from __future__ import annotations

import importlib

from rnnkit.tasks.base import Task, TaskError

TASKS: dict[str, str] = {
    "charlm": "rnnkit.tasks.charlm:CharLM",
    "classify": "rnnkit.tasks.classify:Classify",
    "translate": "rnnkit.tasks.translate:Translate",
    "tag": "rnnkit.tasks.tag:Tag",
    "caption": "rnnkit.tasks.digits:Caption",
    "digits": "rnnkit.tasks.digits:DigitRows",
    "onetoone": "rnnkit.tasks.digits:OneToOneDigits",
    "forecast": "rnnkit.tasks.forecast:Forecast",
    "speech": "rnnkit.tasks.speech:Speech",
}


def get_task(name: str) -> type[Task]:
    if name not in TASKS:
        raise TaskError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    module_name, class_name = TASKS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


__all__ = ["TASKS", "Task", "TaskError", "get_task"]
