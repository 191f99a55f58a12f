"""ONNX Runtime: ONNX's SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss operators, and the graphs
``torch.onnx.export`` makes of PyTorch's losses, run in an ``onnxruntime.InferenceSession`` on the
CPUExecutionProvider. What a deployed model computes.

Layout: ONNX's loss operators take PyTorch's layout, classes on axis 1, (N, C, d1..dk), index targets
(N, d1..dk) int64, an optional weight (C,), ``ignore_index`` and ``reduction`` in none/sum/mean, the weighted
mean dividing by sum(w[y]) over the kept targets, as PyTorch
(https://onnx.ai/onnx/operators/onnx__SoftmaxCrossEntropyLoss.html,
https://onnx.ai/onnx/operators/onnx__NegativeLogLikelihoodLoss.html). So `native` and `matched` coincide
except where ONNX has no attribute: neither operator has label smoothing, probability targets or a weight per
element. Snippets see NumPy arrays (what onnxruntime takes and returns) and these helpers:

- ``run_node(op_type, *inputs, **attributes)``: a one-node ONNX model (opset `OPSET`), its inputs typed by
  dtype and rank with symbolic dimensions, built and loaded once per (op, attributes, dtypes, ranks) and run;
  ``sce`` and ``nll`` are run_node of the two loss operators. What runs is onnxruntime's: its inference build
  has no kernel of its own for either operator and inlines their ONNX function bodies (LogSoftmax,
  GatherElements, Where, Mul, ReduceSum, Div).
- ``exported(fn, x, y, w, s)``: ``torch.onnx.export`` of the PyTorch function ``fn`` (the TorchScript
  exporter, ``dynamo=False``: the dynamo exporter needs the onnxscript package), once per (code, dtypes,
  ranks) with every axis dynamic, to an in-memory model run in onnxruntime. Its native recipes are the
  PyTorch adapter's own snippets (`adapters.torch_adapter`), so a row shows what the deployed graph of a
  PyTorch loss computes.

What onnxruntime does where it departs (pinned in tests/adapters/test_onnxruntime_adapter.py):

- no gradients: onnxruntime is an inference runtime (`no_gradient`); rows judge the value alone;
- labels outside [0, C) and not ignore_index: GatherElements raises for those >= C or < -C, while -1 reads
  class C-1 (GatherElements' negative indices count from the end: label_oob=wrap);
- float16: the CPU provider has float16 kernels for some of the inlined ops only and runs the others in float32
  between Casts (InsertCastTransformer): within float16's tolerance, the loss returned in float16; bfloat16
  has no kernels at all (`Unavailable`, with onnxruntime's message);
- the exporter raises on ``label_smoothing`` ("Unsupported: ONNX does not support label_smoothing") and
  emits SoftmaxCrossEntropyLoss with probability targets, an invalid model (its targets are integers); the
  matched export recipes write both out in PyTorch ops;
- the exporter computes arithmetic on 0-dim tensors, with each other or with a Python number (``l.sum() / d``,
  ``l.sum() / y.numel()``, ``0.9 * l.sum()``), in float32 whatever their dtype (a 0-dim tensor reads as a scalar:
  https://github.com/pytorch/pytorch/issues/85663): a float64 model's loss comes back float32 (`loss_dtype`).
  The matched recipes divide before they sum.

No binary API: ONNX has no binary cross-entropy operator, and the graph the exporter makes of
``F.binary_cross_entropy_with_logits`` computes Log(Sigmoid(x)) and Log(1 - Sigmoid(x)): inf once Sigmoid
rounds to 0 or 1 (|x| of a few tens), digits lost before that (15.94 for 17 in float32); no variant of
`adapters.variants` names that yet.

Modes: ``eager`` only: an InferenceSession is already an optimised, compiled graph; there is nothing to
compile further.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import re
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from adapters import torch_adapter
from adapters.base import Adapter, Api, Code, Recipe, Unavailable, kwargs_code, make_function, py, unsupported
from cases.spec import Inputs, LossSpec

OPSET = 26  # the newest opset onnxruntime 1.31 loads (27 and 28: "only *guarantees* support for ... released")
IR_VERSION = 13  # onnx.helper.VERSION_TABLE's IR version for opset 26
SESSIONS = 64  # InferenceSessions kept (each holds a thread pool): the least recently used go first

SCE = "onnx.SoftmaxCrossEntropyLoss"
NLL = "onnx.NegativeLogLikelihoodLoss"
EXPORT_CE = "torch.onnx.export(cross_entropy)"  # the graph torch.onnx.export makes of F.cross_entropy
SCE_DOC = "https://onnx.ai/onnx/operators/onnx__SoftmaxCrossEntropyLoss.html"
NLL_DOC = "https://onnx.ai/onnx/operators/onnx__NegativeLogLikelihoodLoss.html"
W = Code("w")

NO_GRADIENT = (
    "onnxruntime runs inference only: no gradients (onnxruntime-training, last released as 1.19.2, replaces "
    "the onnxruntime package rather than adding to it); the value is judged alone"
)


# -- the snippets' helpers -----------------------------------------------------------------------------
class Runtime:
    """onnxruntime sessions for the snippets: one-node models (`run_node`) and exported PyTorch functions
    (`exported`), each built once per signature and kept (`SESSIONS` at most)."""

    def __init__(self, spinning: bool = False) -> None:
        import onnx
        import onnxruntime as ort

        self.onnx, self.ort = onnx, ort
        self.options = ort.SessionOptions()
        self.options.log_severity_level = 4  # failures raise with their message; no second copy on stderr
        if intra_op_threads():  # the harness' --threads (OMP_NUM_THREADS), which onnxruntime does not read
            self.options.intra_op_num_threads = intra_op_threads()
        if not spinning:  # idle pool threads would spin between the accuracy pass' short calls
            self.options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sessions: collections.OrderedDict[tuple, tuple[Any, tuple[str, ...]]] = collections.OrderedDict()

    def _session(self, key: tuple, make: Callable[[], bytes], dtypes: set[str]) -> tuple[Any, tuple[str, ...]]:
        """The session of `key` (made from the model `make` returns, the first time) and its input names: the
        exporter drops an input the function does not use, so a model's own list says what to feed."""
        if key in self.sessions:
            self.sessions.move_to_end(key)
            return self.sessions[key]
        blob = make()
        try:
            session = self.ort.InferenceSession(blob, self.options, providers=["CPUExecutionProvider"])
        except Exception as e:  # no kernel for a dtype: that dtype cannot run here, the row says why
            # bfloat16 fails type inference in the inlined function bodies, or finds no kernel; a float16 or
            # float32 type error is the model's own (the exporter's probability targets): raised
            if "Could not find an implementation" in str(e) or "tensor(bfloat16)" in str(e):
                names = ", ".join(sorted(dtypes - {"float", "double", "int64"})) or "these dtypes"
                raise Unavailable(f"onnxruntime has no CPU kernel for {names}: {_first_line(e)}") from e
            raise
        self.sessions[key] = (session, tuple(i.name for i in session.get_inputs()))
        if len(self.sessions) > SESSIONS:
            self.sessions.popitem(last=False)
        return self.sessions[key]

    def run_node(self, op_type: str, *inputs: np.ndarray | None, **attributes: Any) -> np.ndarray:
        """``op_type`` (ONNX's default domain, opset `OPSET`) on `inputs` (a trailing None: an omitted optional
        input); its first output, in the first input's dtype."""
        while inputs and inputs[-1] is None:
            inputs = inputs[:-1]
        arrays = [np.asarray(a) for a in inputs]
        sig = tuple((a.dtype.str, a.ndim) for a in arrays)
        key = ("node", op_type, tuple(sorted(attributes.items())), sig)
        session, names = self._session(key, lambda: self._node_model(op_type, arrays, attributes),
                                       {_onnx_type(self.onnx, a.dtype) for a in arrays})  # fmt: skip
        return session.run(None, dict(zip(names, arrays, strict=True)))[0]

    def _node_model(self, op_type: str, arrays: list[np.ndarray], attributes: dict) -> bytes:
        helper = self.onnx.helper
        names = tuple(f"in{i}" for i in range(len(arrays)))
        ins = [  # typed by dtype and rank, every dimension symbolic
            helper.make_tensor_value_info(
                n, helper.np_dtype_to_tensor_dtype(a.dtype), [f"{n}_{d}" for d in range(a.ndim)]
            )
            for n, a in zip(names, arrays, strict=True)
        ]
        out = helper.make_tensor_value_info("out", helper.np_dtype_to_tensor_dtype(arrays[0].dtype), None)
        node = helper.make_node(op_type, list(names), ["out"], **attributes)
        graph = helper.make_graph([node], op_type, ins, [out])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
        return model.SerializeToString()

    def exported(self, fn: Callable[..., Any], x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None,
                 s: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
        """``fn(x, y, w, s)`` (PyTorch) exported by ``torch.onnx.export`` (TorchScript, every axis dynamic) once
        per (code, dtypes, ranks) and run in onnxruntime on the NumPy arrays; its loss."""
        arrays = {k: a for k, a in zip("xyws", (x, y, w, s), strict=True) if a is not None}
        sig = tuple((k, a.dtype.str, a.ndim) for k, a in arrays.items())
        key = ("export", fn.__code__, sig)
        session, names = self._session(key, lambda: self._export(fn, arrays),
                                       {_onnx_type(self.onnx, a.dtype) for a in arrays.values()})  # fmt: skip
        return session.run(None, {n: arrays[n] for n in names})[0]

    def _export(self, fn: Callable[..., Any], arrays: dict[str, np.ndarray]) -> bytes:
        try:
            import torch
        except ImportError as e:
            raise Unavailable("torch is not installed: torch.onnx.export cannot run (pip install torch)") from e
        names = tuple(arrays)

        class Loss(torch.nn.Module):
            def forward(self, *tensors: Any) -> Any:
                given = dict(zip(names, tensors, strict=True))
                return fn(*(given.get(k) for k in "xyws"))

        example = tuple(_tensor(torch, a) for a in arrays.values())
        axes = {n: {d: f"{n}_{d}" for d in range(a.ndim)} for n, a in arrays.items()}
        buffer = io.BytesIO()
        with warnings.catch_warnings(), _silenced():  # its deprecation notice; the IR dump of a failure
            warnings.simplefilter("ignore")
            torch.onnx.export(Loss(), example, buffer, dynamo=False, input_names=list(names), output_names=["loss"],
                              dynamic_axes=axes)  # fmt: skip
        return buffer.getvalue()


def intra_op_threads() -> int | None:
    """The intra-op threads every framework of a worker gets (OMP_NUM_THREADS, set by the harness' --threads);
    None: onnxruntime's default, one per physical core."""
    n = os.environ.get("OMP_NUM_THREADS", "")
    return int(n) if n.isdigit() and int(n) > 0 else None


def _tensor(torch: Any, a: np.ndarray) -> Any:
    """A torch tensor of the array's dtype; NumPy's bfloat16 (ml_dtypes) through its bits."""
    a = np.ascontiguousarray(a)
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.uint16)).view(torch.bfloat16)
    return torch.from_numpy(a)


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """File descriptors 1 and 2 to /dev/null for the block. The TorchScript exporter turns its C++ log on
    whatever it was (torch/onnx/_internal/torchscript_exporter/utils.py: setup_onnx_logging tests the
    function, not its value) and prints the whole IR graph when an export fails; the exception keeps the
    reason."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in (1, 2)]
    try:
        with open(os.devnull, "wb") as null:
            for fd in (1, 2):
                os.dup2(null.fileno(), fd)
        yield
    finally:
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def _onnx_type(onnx: Any, dtype: np.dtype) -> str:
    """The ONNX type name of a NumPy dtype (``float``, ``double``, ``float16``, ``bfloat16``, ``int64``)."""
    return (
        onnx.helper.tensor_dtype_to_string(onnx.helper.np_dtype_to_tensor_dtype(dtype))
        .removeprefix("TensorProto.")
        .lower()
    )


def _first_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return re.sub(r"\s+", " ", msg)[:300]


# -- recipes: the ONNX operators -------------------------------------------------------------------------
def _loss_args(spec: LossSpec, reduction: str | None = None) -> str:
    return kwargs_code(ignore_index=spec.ignore_index, reduction=reduction or spec.reduction)


def _call(op: str, x: str, spec: LossSpec, reduction: str | None = None) -> str:
    args = ["y", *(["w"] if spec.weighted else []), _loss_args(spec, reduction)]
    return f"{op}({x}, {', '.join(args)})"


def _sample_weighted(spec: LossSpec, call: str, matched: bool) -> str:
    """No per-element weight in ONNX: the unreduced losses (a NumPy array) times ``s``, reduced in NumPy. The
    obvious port takes their mean; PyTorch's rule keeps the unweighted denominator."""
    if spec.reduction == "none":
        return f"loss = {call} * s"
    if spec.reduction == "sum" or not matched:
        return f"loss = ({call} * s).{spec.reduction}()"
    if spec.ignore_index is None:
        d = "w[y].sum()" if spec.weighted else "y.size"
    else:
        keep = f"(y != {spec.ignore_index})"
        count = f"l.dtype.type(np.count_nonzero{keep})"  # np.count_nonzero is an int64: it would promote
        d = f"np.where({keep}, w[np.where({keep}, y, 0)], 0).sum()" if spec.weighted else count
    return f"l = {call} * s\nloss = l.sum() / {d}  # the mean's denominator without the sample weights"


def _operator(op: str, x: str, spec: LossSpec, matched: bool) -> str:
    if spec.sample_weighted:
        return _sample_weighted(spec, _call(op, x, spec, "none"), matched)
    return f"loss = {_call(op, x, spec)}"


def _no_attribute(op: str, spec: LossSpec) -> str | None:
    """Why the operator cannot take the spec, or None."""
    if spec.target != "index":
        return f"{op} takes class indices only, no probability targets ({SCE_DOC if op == 'sce' else NLL_DOC})"
    if spec.label_smoothing:
        return f"{op} has no label smoothing attribute ({SCE_DOC if op == 'sce' else NLL_DOC})"
    return None


def _softmax_cross_entropy(spec: LossSpec) -> tuple[Recipe, Recipe]:
    why = _no_attribute("sce", spec)
    if why:
        return unsupported(why.replace("sce", "SoftmaxCrossEntropyLoss", 1))
    native = Recipe("native", _operator("sce", "x", spec, matched=False))
    if spec.input == "logits":
        return native, Recipe("matched", _operator("sce", "x", spec, matched=True))
    # SoftmaxCrossEntropyLoss applies LogSoftmax itself: (log-)probabilities go to NegativeLogLikelihoodLoss
    x = "x" if spec.input == "log_probs" else 'run_node("Log", x)'
    return native, Recipe("matched", _operator("nll", x, spec, matched=True))


def _negative_log_likelihood(spec: LossSpec) -> tuple[Recipe, Recipe]:
    why = _no_attribute("nll", spec)
    if why:
        return unsupported(why.replace("nll", "NegativeLogLikelihoodLoss", 1))
    return (Recipe("native", _operator("nll", "x", spec, matched=False)),
            Recipe("matched", _operator("nll", "x", spec, matched=True)))  # fmt: skip


# -- recipes: PyTorch's losses, exported ---------------------------------------------------------------
EXPORT = """\
def loss_fn(x, y, w, s):  # PyTorch, exported once per dtype and rank (torch.onnx.export, every axis dynamic)
{body}
    return loss
loss = exported(loss_fn, x, y, w, s)"""


def _exported(code: str) -> str:
    return EXPORT.format(body=textwrap.indent(code, "    "))


CLASS_WEIGHTS = "w.view(-1, *[1] * (x.dim() - 2))"  # w broadcast along axis 1 of x


def _reduce(spec: LossSpec, denominator: str) -> list[str]:
    if spec.reduction == "none":
        return ["loss = l"]
    if spec.reduction == "sum":
        return ["loss = l.sum()"]
    if not denominator:
        return ["loss = l.mean()"]
    # l.sum() / d would divide two 0-dim tensors, which the TorchScript exporter computes in float32 (pytorch#85663)
    return [f"loss = (l / {denominator}).sum()"]


def _written_out(spec: LossSpec) -> str:
    """F.cross_entropy's canonical loss in PyTorch ops the exporter takes: label smoothing as
    (1-e) NLL + e mean_c(-w log p) (no shape as a Python number: the traced graph keeps every axis dynamic),
    probability targets as -sum_c a log p with a zero coefficient's term 0 (0 log 0 = 0), a mean's elements
    divided before they are summed (the exporter computes 0-dim by 0-dim arithmetic in float32)."""
    e = spec.label_smoothing
    logp = {"logits": "F.log_softmax(x, 1)", "log_probs": "x", "probs": "torch.log(x)"}[spec.input]
    lines = [f"logp = {logp}"]
    wlogp = f"logp * {CLASS_WEIGHTS}" if spec.weighted else "logp"
    if spec.target == "prob":
        a = f"y * {CLASS_WEIGHTS}" if spec.weighted else "y"
        lines += [f"a = {a}", "l = -torch.where(a != 0, a * logp, torch.zeros_like(logp)).sum(1)"]
        if e:
            lines.append(f"l = {py(1 - e)} * l - {py(e)} * ({wlogp}).mean(1)")
        lines += ["l = l * s"] * spec.sample_weighted
        return "\n".join(lines + _reduce(spec, ""))
    ii = spec.ignore_index
    nll = f"F.nll_loss(logp, y, {kwargs_code(weight=W if spec.weighted else None, ignore_index=ii, reduction='none')})"
    lines.append(f"l = {py(1 - e)} * {nll} - {py(e)} * ({wlogp}).mean(1)" if e else f"l = {nll}")
    if ii is not None and e:
        lines.append(f"l = torch.where(y != {ii}, l, torch.zeros_like(l))  # ignored targets: no smoothing term")
    lines += ["l = l * s"] * spec.sample_weighted
    if ii is None:
        denominator = "w[y].sum()" if spec.weighted else ""
    else:
        if spec.reduction == "mean":
            lines.append(f"keep = y != {ii}")
        wy = "torch.where(keep, w[torch.where(keep, y, torch.zeros_like(y))], torch.zeros_like(l))"
        denominator = f"{wy}.sum()" if spec.weighted else "keep.to(l.dtype).sum()"
    return "\n".join(lines + _reduce(spec, denominator))


def _export_cross_entropy(spec: LossSpec) -> tuple[Recipe, Recipe]:
    native, matched = torch_adapter._cross_entropy(spec)
    native = Recipe("native", _exported(native.code)) if native.code else native
    # The exporter raises on label_smoothing, emits an invalid model for probability targets and computes a
    # sample-weighted mean's l.sum() / d in float32: those, and the (log-)probability inputs torch has no
    # matched call for, are written out.
    if spec.label_smoothing or spec.target == "prob" or spec.sample_weighted or matched.code is None:
        return native, Recipe("matched", _exported(_written_out(spec)))
    return native, Recipe("matched", _exported(matched.code))


APIS = (
    Api(SCE, lambda s: s.family == "softmax", _softmax_cross_entropy),
    Api(NLL, lambda s: s.family == "softmax" and s.input == "log_probs", _negative_log_likelihood),
    Api(EXPORT_CE, lambda s: s.family == "softmax", _export_cross_entropy),
)


class OnnxRuntimeAdapter(Adapter):
    name = "onnxruntime"
    modules = ("onnxruntime", "onnx")
    distributions = ("onnxruntime", "onnxruntime-gpu")
    also = ("onnx",)
    install_hint = "pip install onnxruntime==1.31.1 onnx==1.23.2"
    apis = APIS
    modes = ("eager",)  # an InferenceSession is already a compiled, optimised graph: no second mode
    no_gradient = NO_GRADIENT
    layout = "classes on axis 1 (PyTorch's layout)"
    names = (
        "`ort` (onnxruntime), `onnx`, `helper` (onnx.helper), `np`; `run_node(op_type, *inputs, **attributes)` "
        "(a helper of this adapter: a one-node ONNX model, opset 26, loaded once per op, attributes, dtypes and "
        "ranks into an `ort.InferenceSession` on the CPUExecutionProvider and run), `sce` and `nll` (run_node of "
        "SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss), `exported(fn, x, y, w, s)` (`torch.onnx.export` "
        "of the PyTorch function once per dtype and rank, every axis dynamic, run the same way), `torch`, `F`"
    )

    def setup(self) -> dict[str, Any]:
        return self._names(Runtime())

    def _names(self, rt: Runtime) -> dict[str, Any]:
        names: dict[str, Any] = {
            "ort": rt.ort, "onnx": rt.onnx, "helper": rt.onnx.helper, "np": np, "run_node": rt.run_node,
            "sce": lambda *a, **k: rt.run_node("SoftmaxCrossEntropyLoss", *a, **k),
            "nll": lambda *a, **k: rt.run_node("NegativeLogLikelihoodLoss", *a, **k),
            "exported": rt.exported,
        }  # fmt: skip
        try:  # for the exported recipes only: the operators' rows run without PyTorch
            import torch

            names.update(torch=torch, F=torch.nn.functional)
        except ImportError:
            pass
        return names

    def threads(self) -> int | None:
        return intra_op_threads()

    def accumulated_mean(self, spec: LossSpec) -> str:
        keep = "np.ones(y.shape, bool)" if spec.ignore_index is None else f"y != {spec.ignore_index}"
        count = "total.dtype.type(np.count_nonzero(keep))"  # np.count_nonzero is an int64: it would promote
        d = "np.where(keep, w[np.where(keep, y, 0)], 0).sum()" if spec.weighted else count
        return f"keep = {keep}\nloss = total / {d}"

    def _stage(self, spec: LossSpec, inputs: Inputs, dtype: str) -> tuple[Any, ...]:
        """NumPy arrays in `dtype` (exact: the inputs are representable in it), index targets int64."""
        dt = _numpy_dtype(dtype)
        x = np.ascontiguousarray(inputs.x.astype(dt, copy=False))
        y = inputs.target.astype(np.int64) if spec.target == "index" else inputs.target.astype(dt)
        w = None if inputs.weight is None else inputs.weight.astype(dt)
        s = None if inputs.sample_weight is None else inputs.sample_weight.astype(dt)
        return x, y, w, s

    def evaluate(
        self, fn: Callable[..., Any], spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str = "eager",
        policy: str = "none",
    ) -> tuple[np.ndarray, None, str]:  # fmt: skip
        """The snippet on NumPy arrays in `dtype`; its loss, no gradient (`no_gradient`), and the loss' dtype."""
        if (mode, policy) != ("eager", "none"):
            raise Unavailable(f"onnxruntime runs an InferenceSession (eager) without a policy, not {mode}/{policy}")
        if device != "cpu":
            raise Unavailable(f"no GPU: {self.no_gpu()}")
        loss = np.asarray(fn(*self._stage(spec, inputs, dtype)))
        return loss.astype(np.float64), None, loss.dtype.name

    def timer(
        self, code: str, spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str, pass_: str
    ) -> tuple[Callable[[], Any], Callable[[Any], None]]:
        """The recipe on fresh sessions with onnxruntime's default options (the first call builds them);
        ``forward`` only: there is no backward pass."""
        if pass_ != "forward":
            raise Unavailable(NO_GRADIENT.split(";")[0])
        if mode != "eager":
            raise Unavailable(f"onnxruntime runs an InferenceSession (eager), not {mode}")
        fn = make_function(code, self._names(Runtime(spinning=True)))
        args = self._stage(spec, inputs, dtype)
        return (lambda: fn(*args)), (lambda result: None)  # the CPU provider returns finished arrays


def _numpy_dtype(dtype: str) -> Any:
    if dtype == "bfloat16":
        import ml_dtypes  # onnx's own dependency: NumPy's bfloat16

        return ml_dtypes.bfloat16
    return np.dtype(dtype)


ADAPTER = OnnxRuntimeAdapter()
