"""Fast training steps: the plain loop's step, without its per-step overhead.

Small CIFAR networks at batch 64 are launch-bound on a GPU: a ResNet-56 step is hundreds of
tiny kernels, each paid for in Python and driver time. ``harness.train.loop.train`` keeps the loop
(data order, augmentation, schedule arrays, evaluation, checkpoints) and takes the step from a
factory; the engines here make that step cheaper without changing what it computes:

* ``graph`` -- channels-last weights and inputs, gradients kept allocated and zeroed in place,
  SGD as a handful of ``torch._foreach`` kernels with the learning rate and momentum in 0-dim
  device tensors updated in place, masks re-applied in the same step. On CUDA the whole step
  (forward, backward, update, masks) is captured once per batch size into a CUDA graph and
  replayed; on a CPU the same step runs uncaptured, so the numbers it computes are the ones a
  GPU replay computes.
* ``compile`` -- the same step with forward and loss compiled by ``torch.compile`` (inductor),
  once per pruned architecture: the compiled function is cached under the architecture's
  parameter and buffer shapes and reused for every seed, plan and twin of that shape. Inductor
  fuses kernels but still launches each one; on CUDA the whole step is therefore captured into a
  CUDA graph as ``graph``'s is (compilation happens in the warm-up steps before the capture).
* ``fused`` -- up to ``group_size`` runs whose pruned networks share an architecture (a plan and
  its random twin always do) train in lockstep as one batched network (``harness.train.fusion``), its
  step captured into a CUDA graph on CUDA as ``graph``'s is.

Both compute ``torch.optim.SGD``'s update (dampening 0, weight decay added to the gradient,
optional Nesterov) and leave the optimizer's ``momentum_buffer`` state in place, so the loop's
checkpoints hold the same state whichever engine ran. They differ from the eager step only by
floating-point rounding (different kernels and memory layouts). bf16 autocast is an option,
off by default; records say which engine and precision produced them.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from harness.core.choices import DEFAULT_GROUP_SIZE, ENGINES
from harness.core.errors import BenchError
from harness.train.loop import StepFactory, eager_step

WARMUP_STEPS = 3
"""Uncaptured steps before a CUDA graph is captured (cuDNN/cuBLAS pick their kernels and workspaces)."""

ForwardLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class EngineSettings:
    """Which engine runs the retraining steps, whether under bf16 autocast, and (``fused``) how many
    runs of one architecture at most train as one network."""

    name: str = "eager"
    bf16: bool = False
    channels_last: bool = True
    group_size: int | None = None
    """Only for ``fused``; ``None`` means ``DEFAULT_GROUP_SIZE`` (see ``runs_per_group``)."""

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise BenchError(f"unknown engine {self.name!r}; choose from {', '.join(ENGINES)}")
        if self.bf16 and self.name == "eager":
            raise BenchError("bf16 autocast runs in the fast engines only; add --engine graph (or another fast engine)")
        if self.group_size is not None and self.name != "fused":
            raise BenchError("--group-size applies to the fused engine only; add --engine fused")
        if self.group_size is not None and self.group_size < 1:
            raise BenchError(f"--group-size must be at least 1, got {self.group_size}")

    @property
    def fused(self) -> bool:
        return self.name == "fused"

    @property
    def runs_per_group(self) -> int:
        return DEFAULT_GROUP_SIZE if self.group_size is None else self.group_size

    @property
    def precision(self) -> str:
        return "bf16-autocast" if self.bf16 else "fp32"

    @classmethod
    def of_run(cls, engine: str, precision: str, group_size: int | None = None) -> EngineSettings:
        """The settings a run's record names: its ``engine`` and ``precision`` fields, and (fused) its group's size."""
        if precision not in ("fp32", "bf16-autocast"):
            raise BenchError(f"unknown precision {precision!r} in a run record; expected fp32 or bf16-autocast")
        return cls(engine, bf16=precision == "bf16-autocast", group_size=group_size if engine == "fused" else None)


def forward_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``model`` on one batch: the objective of every training step."""
    return nn.functional.cross_entropy(model(x), y)


def architecture_key(model: nn.Module) -> tuple:
    """What a compiled step depends on: the module class and every parameter's and buffer's name and shape."""
    return (
        type(model).__module__, type(model).__qualname__,
        tuple((name, tuple(p.shape)) for name, p in model.named_parameters()),
        tuple((name, tuple(b.shape)) for name, b in model.named_buffers()),
    )


@dataclass
class CompileCache:
    """Compiled forward-and-loss functions, one per architecture, reused across seeds, plans and twins.

    Each entry is a fresh copy of ``forward_loss`` with its own code object, so ``torch.compile``
    keeps one cache (and one recompile budget) per architecture instead of sharing one among all.
    """

    entries: dict[tuple, ForwardLoss] = field(default_factory=dict)

    def forward_loss(self, model: nn.Module, bf16: bool, channels_last: bool) -> ForwardLoss:
        key = (architecture_key(model), bf16, channels_last)
        if key not in self.entries:
            code = forward_loss.__code__.replace(co_name=f"forward_loss_{len(self.entries)}")
            fresh = types.FunctionType(code, forward_loss.__globals__, code.co_name)
            self.entries[key] = torch.compile(fresh, dynamic=False)
        return self.entries[key]


def sgd_update(
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    buffers: Sequence[torch.Tensor],
    neg_lr: torch.Tensor | Sequence[torch.Tensor],
    momentum: torch.Tensor | Sequence[torch.Tensor],
    weight_decay: float,
    nesterov: bool,
) -> None:
    """``torch.optim.SGD.step`` (dampening 0) with ``-lr`` and momentum as 0-dim tensors, or as one
    tensor per parameter that broadcasts against it (a fused group's per-run values).

    Momentum buffers start at zero, so the first step stores the gradient exactly as SGD does.
    No value is read back to the host, so the update can be captured in a CUDA graph.
    """
    if weight_decay:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    torch._foreach_mul_(buffers, momentum)
    torch._foreach_add_(buffers, grads)
    direction = torch._foreach_add(grads, torch._foreach_mul(buffers, momentum)) if nesterov else buffers
    torch._foreach_add_(params, torch._foreach_mul(direction, neg_lr))


class CapturedStep:
    """Runs a step's ``_body`` directly, or -- on CUDA, when ``capture`` is set -- replays it from a CUDA
    graph captured once per input shape (a second graph serves an epoch's shorter last batch).

    Subclasses give the body (no host syncs inside it) and ``_state``: every tensor the body
    writes besides gradients, which the warm-up before a capture must leave as it found it.
    """

    def __init__(self, memory_format: torch.memory_format, capture: bool):
        self.memory_format = memory_format
        self.capture = capture
        self.graphs: dict[tuple[int, ...], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def _body(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _state(self) -> list[torch.Tensor]:
        raise NotImplementedError

    def _run(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not self.capture:
            return self._body(x.contiguous(memory_format=self.memory_format), y)
        shape = tuple(x.shape)
        if shape not in self.graphs:
            self.graphs[shape] = self._capture(x, y)
        graph, static_x, static_y, static_loss = self.graphs[shape]
        static_x.copy_(x)
        static_y.copy_(y)
        graph.replay()
        return static_loss

    def _capture(self, x: torch.Tensor, y: torch.Tensor):
        """Warm up on a side stream, restore the state the warm-up changed, capture one step for this shape."""
        static_x = torch.empty_like(x, memory_format=self.memory_format).copy_(x)
        static_y = y.clone()
        state = self._state()
        saved = [t.clone() for t in state]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                self._body(static_x, static_y)
        torch.cuda.current_stream().wait_stream(side)
        with torch.no_grad():
            torch._foreach_copy_(state, saved)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):  # loader threads may pin memory meanwhile
            static_loss = self._body(static_x, static_y)
        return graph, static_x, static_y, static_loss


class FastStep(CapturedStep):
    """One training step of ``model`` under ``optimizer``'s hyperparameters; see the module docstring.

    Build it after the optimizer's state is loaded (a resumed run): it adopts the momentum
    buffers it finds and adds zero ones where there are none.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.SGD,
        masks: Sequence[tuple[torch.Tensor, torch.Tensor]],
        settings: EngineSettings,
        forward_loss_fn: ForwardLoss = forward_loss,
    ):
        group = optimizer.param_groups[0]
        if len(optimizer.param_groups) != 1 or group.get("dampening", 0) != 0 or group.get("maximize", False):
            raise ValueError("FastStep implements single-group SGD without dampening or maximize")
        device = group["params"][0].device
        super().__init__(torch.channels_last if settings.channels_last else torch.preserve_format,
                         capture=device.type == "cuda")
        if settings.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.group = group
        self.forward_loss = forward_loss_fn
        self.bf16 = settings.bf16
        self.params = [p for p in group["params"] if p.requires_grad]
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            state = optimizer.state[p]
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = torch.zeros_like(p)
        self.grads = [p.grad for p in self.params]
        self.buffers = [optimizer.state[p]["momentum_buffer"] for p in self.params]
        self.masked = [w for w, _ in masks]
        self.masks = [torch.empty_like(w).copy_(m) for w, m in masks]  # in the weights' layout
        self.neg_lr = torch.zeros((), device=device)
        self.momentum = torch.full((), float(group["momentum"]), device=device)
        self.weight_decay = float(group["weight_decay"])
        self.nesterov = bool(group["nesterov"])

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float, momentum: float | None) -> torch.Tensor:
        self.group["lr"] = lr
        self.neg_lr.fill_(-lr)
        if momentum is not None:
            self.group["momentum"] = momentum
            self.momentum.fill_(momentum)
        return self._run(x, y)

    def _body(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss = self.forward_loss(self.model, x, y)
        torch._foreach_zero_(self.grads)
        loss.backward()
        with torch.no_grad():
            sgd_update(self.params, self.grads, self.buffers, self.neg_lr, self.momentum, self.weight_decay,
                       self.nesterov)
            if self.masked:
                torch._foreach_mul_(self.masked, self.masks)
        return loss.detach()

    def _state(self) -> list[torch.Tensor]:
        return [*self.params, *self.buffers, *self.model.buffers()]


def step_factory(settings: EngineSettings, cache: CompileCache | None = None) -> StepFactory:
    """The step factory ``harness.train.loop.train`` takes for ``settings``.

    The ``compile`` engine needs the cache its compiled functions live in (one per workspace).
    """
    if settings.name == "eager":
        return eager_step
    if settings.fused:
        raise ValueError("fused runs train in lockstep through harness.train.fusion.train_fused, not one step at a time")
    if settings.name == "compile" and cache is None:
        raise ValueError("the compile engine needs a CompileCache")

    def make(model: nn.Module, optimizer: torch.optim.SGD,
             masks: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> FastStep:
        if settings.name == "compile":
            return FastStep(model, optimizer, masks, settings,
                            cache.forward_loss(model, settings.bf16, settings.channels_last))
        return FastStep(model, optimizer, masks, settings)

    return make
