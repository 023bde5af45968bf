"""The routing options of workflow steps, checked with the steps they refer to.

``config.success`` (``"sent"``, or ``{"delivered_within": SECONDS}``) and ``config.wait_for``
(``{"step": POSITION, "status": STATUS, "within": SECONDS}``) are read by the sending path
(:mod:`dispatcher.sending.routing`); here they are checked when a workflow is stored, across
the steps (a wait names an earlier channel step, with a status that step can reach), and every
problem is named by its full path: ``steps.2.config.wait_for.step``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from dispatcher.sending.routing import INBOX_STATUSES, DeliveredWithin, WaitFor
from models import ChannelType, StepKind

CHANNEL_KINDS = frozenset(StepKind(channel.value) for channel in ChannelType)

Problem = tuple[tuple[int | str, ...], str]


class StepLike(Protocol):
    @property
    def kind(self) -> StepKind: ...
    @property
    def config(self) -> dict[str, Any]: ...


def routing_problems(steps: Sequence[StepLike]) -> list[Problem]:
    """``(location, message)`` of each problem of the steps' routing options, in order."""
    problems: list[Problem] = []
    for position, step in enumerate(steps):
        where: tuple[int | str, ...] = (position, "config")
        if "success" in step.config:
            problems += _success((*where, "success"), step, step.config["success"])
        if "wait_for" in step.config:
            problems += _wait((*where, "wait_for"), position, step, steps)
    return problems


def _success(where: tuple[int | str, ...], step: StepLike, value: Any) -> list[Problem]:
    if step.kind not in CHANNEL_KINDS:
        return [(where, f"a {step.kind.value} step sends nothing; only a channel step has one")]
    if step.kind is StepKind.IN_APP:
        return [(where, "an in-app message is delivered when written: no provider reports it")]
    if value == "sent":
        return []
    if not isinstance(value, dict):
        return [(where, 'either "sent" (the default) or {"delivered_within": SECONDS}')]
    return _model_problems(where, DeliveredWithin, value)


def _wait(
    where: tuple[int | str, ...], position: int, step: StepLike, steps: Sequence[StepLike]
) -> list[Problem]:
    value = step.config["wait_for"]
    if step.kind not in CHANNEL_KINDS:
        return [(where, f"a {step.kind.value} step cannot wait on another; a channel step can")]
    if not isinstance(value, dict):
        return [(where, '{"step": POSITION, "status": "opened", "within": SECONDS}')]
    problems = _model_problems(where, WaitFor, value)
    if problems:
        return problems
    wait = WaitFor.model_validate(value)
    problem = _reference_problem(wait, position, steps)
    return [] if problem is None else [((*where, problem[0]), problem[1])]


def _reference_problem(
    wait: WaitFor, position: int, steps: Sequence[StepLike]
) -> tuple[str, str] | None:
    """What is wrong with the step a wait names, or with the status it waits for."""
    if wait.step >= position:
        span = f"0 to {position - 1}" if position > 1 else "0" if position else "none yet"
        return "step", f"the position of an earlier step ({span})"
    earlier = steps[wait.step].kind
    if earlier not in CHANNEL_KINDS:
        return "step", f"step {wait.step} is a {earlier.value} step; wait on a channel step"
    if wait.status in INBOX_STATUSES and earlier is not StepKind.IN_APP:
        return "status", (
            f"{wait.status!r} is an in-app step's mark; step {wait.step} is a {earlier.value} "
            "step: use delivered, opened or clicked"
        )
    if wait.status not in INBOX_STATUSES and earlier is StepKind.IN_APP:
        return "status", (
            f"step {wait.step} is an in-app step: wait for 'seen' or 'read' (no provider "
            "reports it)"
        )
    return None


def _model_problems(
    where: tuple[int | str, ...], model: type[BaseModel], value: dict[str, Any]
) -> list[Problem]:
    try:
        model.model_validate(value)
    except ValidationError as exc:
        return [((*where, *item["loc"]), item["msg"]) for item in exc.errors(include_url=False)]
    return []
