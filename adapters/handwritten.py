"""The seed articles' hand-written cross-entropy, as APIs of the NumPy framework (`adapters.numpy_adapter`).

Many readers of the seed articles (`cases.documented.SEEDS`) run the code those articles teach rather than a
framework's loss. Each API here is one article's code as the article writes it (`native`) and what to change
to get PyTorch's value (`matched`), so a run shows how far the copied code is from the frameworks, and why:

- ``numpy.seed002_binary_ce``: seed 002, "python交叉熵函数 numpy 交叉熵(三)": binary cross-entropy in NumPy
  that clips the predictions to [eps, 1 - eps] ("eps is a very small value; the clip keeps the predicted
  probabilities inside (0, 1)") and returns the sum of the element losses. Explained by ``prob_clip=1e-7``
  and ``reduction=sum``.
- ``numpy.seed000_multiclass_ce``: seeds 000 ("Pytorch中的CrossEntropy") and 001 ("理解「交叉熵」损失函数"):
  ``cross_entropy = -sum_k p_k log q_k`` over predicted probabilities q and one-hot labels p, written as one
  ``np.sum`` (seed 001's empirical risk divides by N: the matched recipe's mean). Explained by ``reduction=sum``.
- ``numpy.seed004_rounded_softmax_nll``: seed 004, "Pytorch损失函数torch.nn.NLLLoss()的使用": a softmax made
  with ``math.exp`` and rounded to three decimals (``round(i / sum_z_exp, 3)``), its log, and NLLLoss by hand
  ("take the label's value, drop the sign, average"). Rounded, the loss is piecewise constant in x: its value
  alone is judged (`VALUE_ONLY`); a probability that rounds to 0.000 makes the loss infinite, and ``math.exp``
  overflows past logits of 709. Explained by ``probs_rounded=3``.

The article's code has no class weights, ignore_index, label smoothing or per-element weights: native
recipes for specs with those are unsupported with the reason; matched recipes compose them. NumPy has no
autodiff: the adapter takes these losses' gradients numerically, in float64 (`adapters.numerical`).
"""

from __future__ import annotations

from collections.abc import Callable

from adapters.base import Api, Recipe
from cases.spec import LossSpec

SEED002 = "numpy.seed002_binary_ce"
SEED000 = "numpy.seed000_multiclass_ce"
SEED004 = "numpy.seed004_rounded_softmax_nll"

CLASS_WEIGHTS = "wc = w.reshape((-1,) + (1,) * (x.ndim - 2))  # class weights along axis 1\n"


def _missing(spec: LossSpec, what: str, returns: str) -> str:
    """Why the article's code, which returns one `returns` (sum or mean), cannot express `spec` ('' where it
    can: a sum or mean configuration gets the article's reduction, which a run then names)."""
    fields = [name for name, on in (("class weights", spec.weighted), ("ignore_index", spec.ignore_index is not None),
                                    ("label smoothing", bool(spec.label_smoothing)),
                                    ("per-element weights", spec.sample_weighted)) if on]  # fmt: skip
    if fields:
        return f"{what} has no {', '.join(fields)}"
    if spec.reduction == "none":
        return f"{what} returns one {returns}, not one loss per element"
    return ""


def _reduced(spec: LossSpec, denominator: str) -> str:
    """``loss = ...`` from the per-element losses ``l`` (times the sample weights ``s``)."""
    code = "l = l * s  # per-element weights; the mean's denominator stays the unweighted one\n" if (
        spec.sample_weighted) else ""  # fmt: skip
    if spec.reduction == "none":
        return code + "loss = l"
    if spec.reduction == "sum":
        return code + "loss = l.sum()"
    if denominator == "d":  # a sum of weights that may be 0 (every label ignored): PyTorch's 0/0 is NaN
        return code + "loss = l.sum() / d if d > 0 else np.nan  # PyTorch: NaN over no labels"
    return code + ("loss = l.mean()" if denominator == "l.size" else f"loss = l.sum() / {denominator}")


def _softmax_matched(spec: LossSpec, logp: str) -> str:
    """The canonical (PyTorch's) loss from ``logp`` (log-probabilities on axis 1): NLL gathered at the labels,
    class weights, ignore_index, label smoothing, the weighted mean."""
    code, e = logp, spec.label_smoothing
    if spec.target == "prob":
        code += "t = y\n" if not e else f"t = {1 - e:g} * y + {e:g} / x.shape[1]  # label smoothing\n"
        if spec.weighted:
            code += CLASS_WEIGHTS + "t = t * wc\n"
        code += "l = -(t * logp).sum(axis=1)\n"
        return code + _reduced(spec, "l.size")
    ii = spec.ignore_index
    if ii is None:
        code += "yk = np.expand_dims(y, 1)  # labels on the class axis\n"
    else:
        code += f"keep = y != {ii}  # ignored labels count for nothing\n"
        code += "yk = np.expand_dims(np.where(keep, y, 0), 1)\n"
    code += "nll = -np.take_along_axis(logp, yk, axis=1)[:, 0]  # -log p[y]\n"
    if spec.weighted:
        code += "wy = w[yk[:, 0]]" + (" * keep\n" if ii is not None else "\n")
    elif ii is not None:
        code += "wy = keep * 1.0\n"
    weighted = spec.weighted or ii is not None
    term = "wy * nll" if weighted else "nll"
    if e:
        if spec.weighted:
            code += CLASS_WEIGHTS + "smooth = -(logp * wc).sum(axis=1) / x.shape[1]\n"
        else:
            code += "smooth = -logp.sum(axis=1) / x.shape[1]\n"
        term = f"{1 - e:g} * {term} + {e:g} * smooth"
    code += f"l = np.where(keep, {term}, 0)\n" if ii is not None else f"l = {term}\n"
    if not weighted:
        return code + _reduced(spec, "l.size")
    return code + ("d = wy.sum()  # the mean divides by the sum of w[y] over the kept labels\n"
                   if spec.reduction == "mean" else "") + _reduced(spec, "d")  # fmt: skip


# -- seed 002: binary cross-entropy with a clip and a sum ----------------------------------------------------

SEED002_NATIVE = """\
eps = 1e-7  # seed 002: "eps is a very small value"
p = np.clip(x, eps, 1 - eps)  # "the clip keeps the predicted probabilities inside (0, 1)"
loss = -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))  # "the summed loss array is the return value"
"""


def _seed002(spec: LossSpec) -> tuple[Recipe, Recipe]:
    why = _missing(spec, "seed 002's function", "sum")
    native = Recipe("native", None, why) if why else Recipe("native", SEED002_NATIVE)
    e = spec.label_smoothing
    code = f"y = y * {1 - e:g} + {e / 2:g}  # label smoothing towards 1/2\n" if e else ""
    pos = "y"
    if spec.weighted:
        code += CLASS_WEIGHTS.replace("class weights", "pos_weight")
        pos = "wc * y"
    code += ("# no clip; a label of 0 (1) takes no log of p (1 - p): 0 log 0 = 0, as in PyTorch's value\n"
             f"pos = np.where(y != 0, {pos} * np.log(x), 0)\n"
             "neg = np.where(y != 1, (1 - y) * np.log(1 - x), 0)\n"
             "l = -(pos + neg)\n")  # fmt: skip
    return native, Recipe("matched", code + _reduced(spec, "l.size"))


# -- seeds 000 and 001: -sum_k p_k log q_k over probabilities ---------------------------------------------------


SEED000_ONE_HOT = "p = np.moveaxis(np.eye(x.shape[1])[y], -1, 1)  # one-hot labels: p_k = 1 at the true class\n"
SEED000_NATIVE = "loss = -np.sum(TARGET * np.log(x))  # seeds 000/001: cross_entropy = -sum_k p_k log q_k\n"


def _seed000(spec: LossSpec) -> tuple[Recipe, Recipe]:
    why = _missing(spec, "the articles' formula", "sum")
    if why:
        native = Recipe("native", None, why)
    elif spec.target == "index":
        native = Recipe("native", SEED000_ONE_HOT + SEED000_NATIVE.replace("TARGET", "p"))
    else:
        native = Recipe("native", SEED000_NATIVE.replace("TARGET", "y"))
    return native, Recipe("matched", _softmax_matched(spec, "logp = np.log(x)  # x holds the probabilities q\n"))


# -- seed 004: a softmax with math.exp, rounded to three decimals, then NLL by hand -------------------------------

SEED004_NATIVE = """\
rows = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1]).tolist()  # each element's scores, as Python lists
softmax = []
for z in rows:  # seed 004's softmax
    z_exp = [math.exp(i) for i in z]
    sum_z_exp = sum(z_exp)
    softmax.append([round(i / sum_z_exp, 3) for i in z_exp])
log_softmax = np.log(softmax)  # "log_softmax: one more log on top of the softmax"
loss = -log_softmax[np.arange(len(rows)), y.reshape(-1)].mean()  # "take the label's value, drop the sign, average"
"""

SEED004_LOGP = """\
m = x.max(axis=1, keepdims=True)  # shifted: exp cannot overflow (math.exp does past 709)
logp = x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))  # log_softmax: no rounding, no log of 0
"""


def _seed004(spec: LossSpec) -> tuple[Recipe, Recipe]:
    why = _missing(spec, "seed 004's NLLLoss by hand", "mean")
    native = Recipe("native", None, why) if why else Recipe("native", SEED004_NATIVE)
    return native, Recipe("matched", _softmax_matched(spec, SEED004_LOGP))


# The rounded softmax is piecewise constant in x: its gradient is 0 wherever it is defined, so its rows judge
# the value alone (a numerical derivative would be 0 or a jump over the step).
VALUE_ONLY = {SEED004_NATIVE: "seed 004 rounds the softmax to 3 decimals: the loss is piecewise constant in x "
                              "(gradient 0 where defined), so its value alone is judged"}  # fmt: skip


def _takes(family: str, input: str, target: str | None = None) -> Callable[[LossSpec], bool]:
    """The specs an article's code is for (none writes a gradient-accumulation loop or a linear head)."""
    return lambda s: (
        s.family == family
        and s.input == input
        and target in (None, s.target)
        and not s.micro_batches
        and not getattr(s, "linear", False)
    )


APIS = (
    Api(SEED002, _takes("sigmoid", "probs"), _seed002),
    Api(SEED000, _takes("softmax", "probs"), _seed000),
    Api(SEED004, _takes("softmax", "logits", "index"), _seed004),
)
