"""Each variant (alone, or combined as an explanation names it: ``a+b``) reproduces a real framework's
behaviour on a case where it matters, and is distinguishable from the canonical semantics there."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings

import numpy as np
import pytest

from adapters import variants as V
from adapters.reference import Evaluation, evaluate
from cases.generator import default_cases
from cases.spec import Case, Inputs, LossSpec
from harness.judge.metrics import compare
from harness.judge.tolerances import tolerance

CASES = {c.id: c for c in default_cases(dtypes=("float64", "float32", "float16"))}


def case(prefix: str) -> Case:
    return next(c for i, c in CASES.items() if i.startswith(prefix))


def check(name: str, c: Case, value, grad=None) -> None:
    """The variants `name` names (``a+b``; a ``computed_in=D`` part computes in D) reproduce (value, grad) on
    case c, and the canonical semantics do not."""
    inputs = c.inputs()
    parts = tuple(V.BY_NAME[n] for n in name.split("+"))
    low = [v.dtype for v in parts if v.dtype]
    semantic = tuple(v for v in parts if v.dtype is None)
    ev = V.evaluate_variants(semantic, c.spec, inputs, low[0] if low else "float64", constants=c.dtype)
    assert ev is not None, f"{name} does not apply to {c.id}"
    tol = max(tolerance(c.dtype, c.n_classes, c.n_elements), 1e-6)
    ref = evaluate(c.spec, inputs)
    value = np.asarray(value, np.float64)
    grad = ev.grad if grad is None else np.asarray(grad, np.float64)
    got = compare(value, grad, ev, c.dtype, tol)
    assert got.outcome == "ok", (
        f"{name} on {c.id}: framework value={value.ravel()[:3]} variant={np.ravel(ev.value)[:3]} {got}"
    )
    canonical = compare(value, grad, ref, c.dtype, tol)
    assert canonical.outcome != "ok", f"{name} is indistinguishable from the canonical semantics on {c.id}"


# -- PyTorch --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed")


def torch_run(torch, c: Case, code):
    inputs = c.inputs()
    x = torch.tensor(inputs.x, dtype=getattr(torch, c.dtype), requires_grad=True)
    y = torch.tensor(inputs.target, dtype=torch.int64 if c.spec.target == "index" else getattr(torch, c.dtype))
    w = None if inputs.weight is None else torch.tensor(inputs.weight, dtype=getattr(torch, c.dtype))
    loss = code(torch.nn.functional, x, y, w)
    (loss.sum() if loss.dim() else loss).backward()
    return loss.detach().double().numpy(), x.grad.double().numpy()


def test_prob_clamp_is_bceloss(torch) -> None:
    for prefix in ("binary-p01soft-n64-c4-f64", "binary-p01-n64-c4-f64", "binary-p01-n64-c4-f16"):
        c = case(prefix)
        check(
            "prob_clamp=log>=-100",
            c,
            *torch_run(torch, c, lambda F, x, y, w, r=c.spec.reduction: F.binary_cross_entropy(x, y, reduction=r)),
        )


def test_probs_passed_as_logits_is_cross_entropy_on_probabilities(torch) -> None:
    c = case("multiclass-n64-c10-f64-prob-mean")
    check("probs_passed_as_logits", c, *torch_run(torch, c, lambda F, x, y, w: F.cross_entropy(x, y)))


def test_log_probs_passed_as_logits_is_cross_entropy_on_log_probabilities(torch) -> None:
    c = case("multiclass-n64-c10-f64-logp-mean")
    check("log_probs_passed_as_logits", c, *torch_run(torch, c, lambda F, x, y, w: F.cross_entropy(x, y)))


def test_class_axis_0_is_seed_004s_softmax_over_dim_0(torch) -> None:
    c = case("documented-seed004-n3-c3-f64")
    check(
        "class_axis=0",
        c,
        *torch_run(torch, c, lambda F, x, y, w: F.nll_loss(torch.log(F.softmax(x, dim=0)), y)),
    )


def test_zero_log_zero_is_cross_entropy_with_masked_logits(torch) -> None:
    c = case("edge-masked-n64-c10-f64-pt-mean")
    check("0*log(0)=nan", c, *torch_run(torch, c, lambda F, x, y, w: F.cross_entropy(x, y)))


def test_computed_in_float16_is_the_half_precision_sum_overflow(torch) -> None:
    c = case("edge-big-n64-c10-f16-mean")
    check("computed_in=float16", c, *torch_run(torch, c, lambda F, x, y, w: F.cross_entropy(x, y)))


def test_reductions(torch) -> None:
    c = case("multiclass-n64-c10-f64-w-mean")
    check(
        "reduction=sum",
        c,
        *torch_run(torch, c, lambda F, x, y, w: F.cross_entropy(x, y, weight=w, reduction="sum")),
    )
    c = case("multiclass-n64-c10-f64-sum")
    check("reduction=mean", c, *torch_run(torch, c, lambda F, x, y, w: F.cross_entropy(x, y)))


def test_smoothing_variants_are_the_hand_written_ports(torch) -> None:
    """What a port that builds the smoothed targets by hand computes (1-e on the label, e/(C-1) or e/2 elsewhere)."""
    c = case("smoothed-n64-c10-f64-ls0.1-mean")
    e, k = 0.1, c.n_classes

    def by_hand(on, off):
        return lambda F, x, y, w: F.cross_entropy(x, F.one_hot(y, k).double() * (on - off) + off)

    check("smoothing=C-1", c, *torch_run(torch, c, by_hand(1 - e, e / (k - 1))))
    check("smoothing=0.5", c, *torch_run(torch, c, by_hand(1 - e / 2, e / 2)))


def test_soft_targets_renormalised(torch) -> None:
    c = case("edge-unnormalised-n64-c10-f64-pt-mean")
    check(
        "soft_targets_renormalised",
        c,
        *torch_run(torch, c, lambda F, x, y, w: F.cross_entropy(x, y / y.sum(1, keepdim=True))),
    )


# -- Keras / TensorFlow ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed")
    import keras

    return keras


def keras_run(c: Case, loss_fn):
    import tensorflow as tf

    inputs = c.inputs()
    x = tf.Variable(inputs.x, dtype=c.dtype)
    with tf.GradientTape() as tape:
        loss = loss_fn(tf, x, inputs)
        total = tf.reduce_sum(loss)
    return loss.numpy(), tape.gradient(total, x).numpy()


def test_label_oob_nan_rows_is_tensorflow_under_xla(keras) -> None:
    """tf.nn.sparse_softmax_cross_entropy_with_logits raises eagerly on a label outside [0, C); compiled by XLA
    it returns a NaN loss and NaN gradient rows for them, and its mean still counts them (tensorflow#126005)."""
    import tensorflow as tf

    c = case("edge-oob-n64-c10-f32")
    inputs = c.inputs()
    x, y = tf.constant(inputs.x, tf.float32), tf.constant(inputs.target, tf.int64)

    @tf.function(jit_compile=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x))
        return loss, tape.gradient(loss, x)

    value, grad = step(x, y)
    assert np.isnan(value.numpy()) and np.isnan(grad.numpy()[0]).all()
    check("weight_norm=N+label_oob=nan_rows", c, value.numpy(), grad.numpy())


def test_accumulation_mean_of_means_is_a_naive_accumulation_loop(torch) -> None:
    """The loop people write first: loss = F.cross_entropy(micro-batch) / steps, backward per micro-batch."""
    c = case("accumulation-n64-c10-f64-iim100-mb8x24x32-mean")
    inputs = c.inputs()
    x = torch.tensor(inputs.x, requires_grad=True)
    y = torch.tensor(inputs.target)
    total = 0.0
    for a, b in ((0, 8), (8, 32), (32, 64)):
        loss = torch.nn.functional.cross_entropy(x[a:b], y[a:b], ignore_index=-100) / 3
        loss.backward()
        total += float(loss.detach())
    check("accumulation=mean_of_means", c, total, x.grad.numpy())


def test_weight_norm_n_is_keras_sum_over_batch_size(keras) -> None:
    c = case("multiclass-n64-c10-f64-w-mean")

    def fn(tf, x, inputs):
        sw = inputs.weight[inputs.target]
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)(inputs.target, x, sample_weight=sw)

    check("weight_norm=N", c, *keras_run(c, fn))


def test_prob_clip_is_keras_from_probabilities(keras) -> None:
    """Keras losses compute in their float32 dtype policy, so these are float32 cases. The binary loss clips
    (probabilities of exactly 0 and 1 here); the categorical ones first divide by the sum (no probability
    is below 1e-7 here, so that is all they do), and clip as well where one is."""
    c = case("binary-p01soft-n64-c4-f32")
    check("prob_clip=1e-7", c, *keras_run(c, lambda tf, x, i: keras.losses.BinaryCrossentropy()(i.target, x)))
    c = case("multiclass-n64-c10-f32-prob-mean")
    x = c.inputs().x
    bump = Case("user", c.spec, c.shape, "float32", data=Inputs(x * 1.1, c.inputs().target))  # sums to 1.1
    sparse = lambda tf, x, i: keras.losses.SparseCategoricalCrossentropy()(i.target, x)  # noqa: E731
    check("probs_renormalised", bump, *keras_run(bump, sparse))
    tiny = x.copy()
    tiny[:, 0] = 1e-9  # below the clip in every row
    tiny = Case("user", c.spec, c.shape, "float32", data=Inputs(tiny.astype(np.float32), c.inputs().target))
    check("probs_renormalised=after_clip+prob_clip=1e-7", tiny, *keras_run(tiny, sparse))
    categorical = lambda tf, x, i: keras.losses.CategoricalCrossentropy()(tf.one_hot(i.target, 10), x)  # noqa: E731
    check("probs_renormalised+prob_clip=1e-7", tiny, *keras_run(tiny, categorical))


def test_grad_assumes_normalised_targets_is_tf_softmax_xent(keras) -> None:
    c = case("edge-unnormalised-n64-c10-f64-pt-mean")
    fn = lambda tf, x, i: tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=i.target, logits=x))  # noqa: E731
    check("grad_assumes_normalised_targets", c, *keras_run(c, fn))


def test_label_oob_zero_row_is_tf_one_hot_of_the_ignored_label(keras) -> None:
    c = case("multiclass-n64-c10-f64-iim100-mean")

    def fn(tf, x, i):
        onehot = tf.one_hot(i.target, c.n_classes, dtype=x.dtype)
        return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=onehot, logits=x))

    check("weight_norm=N+label_oob=zero_row", c, *keras_run(c, fn))


def test_sample_weight_norm_is_keras_mean_with_sample_weight(keras) -> None:
    """Keras' 'mean_with_sample_weight' reduction divides by the sum of the sample weights
    (https://keras.io/api/losses/, `reduction`), where PyTorch's rule keeps the unweighted count."""
    c = case("multiclass-n64-c10-f32-w-sw-mean")

    def fn(tf, x, i):
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")
        return loss(i.target, x, sample_weight=i.weight[i.target] * i.sample_weight)

    check("sample_weight_norm=sum", c, *keras_run(c, fn))


def test_empty_mean_is_keras_ignore_class_on_an_all_ignored_batch(keras) -> None:
    c = case("multiclass-allignored-n64-c10-f32-iim100-mean")
    fn = lambda tf, x, i: keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100)(i.target, x)  # noqa: E731
    check("empty_mean=0", c, *keras_run(c, fn))


def test_class_axis_last_is_a_kdim_input_passed_with_classes_on_axis_1(keras) -> None:
    """tf.nn.softmax_cross_entropy_with_logits on (N, C, d) probability targets: the softmax runs over d, and
    its backprop assumes the labels sum to 1 over d (they sum to 1 over C)."""
    c = case("soft-n8-c10-d16-f64-pt-mean")
    fn = lambda tf, x, i: tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=i.target, logits=x))  # noqa: E731
    check("class_axis=-1+grad_assumes_normalised_targets", c, *keras_run(c, fn))


def test_mean_over_last_axis_is_keras_binary_crossentropy(keras) -> None:
    for prefix in ("binary-hard-n64-c4-f32-sum", "binary-hard-n64-c4-f32-none"):
        c = case(prefix)
        red = c.spec.reduction
        check("mean_over_last_axis", c,
              *keras_run(c, lambda tf, x, i, r=red: keras.losses.BinaryCrossentropy(from_logits=True, reduction=r)(i.target, x)))  # fmt: skip


def test_sample_weight_is_keras_smoothing_with_class_weights(keras) -> None:
    c = case("smoothed-n64-c10-f32-w-ls0.2-mean")

    def fn(tf, x, i):
        loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2)
        return loss(tf.one_hot(i.target, c.n_classes), x, sample_weight=i.weight[i.target])

    check("weight_norm=N+sample_weight=w[y]", c, *keras_run(c, fn))


# -- JAX / optax ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jnp():
    pytest.importorskip("jax", reason="JAX is not installed")
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax.numpy


def jax_run(c: Case, fn):
    import jax

    inputs = c.inputs()
    x = jax.numpy.asarray(inputs.x)
    value = fn(x, inputs.target)
    grad = jax.grad(lambda x: fn(x, inputs.target).sum())(x)
    return np.asarray(value), np.asarray(grad)


def test_empty_mean_nan_grad_is_a_masked_mean_differentiated_by_jax(jnp) -> None:
    """A hand-written masked mean, loss * mask summed over mask.sum(): on an all-ignored batch autodiff takes
    the 0/0 into the gradient (0 * inf, the JAX FAQ's NaN-gradient case); PyTorch's gradient there is 0."""
    import jax

    c = case("multiclass-allignored-n64-c10-f64-iim100-mean")

    def fn(x, y):
        keep = y != -100
        logp = jax.nn.log_softmax(x, axis=1)
        nll = -jnp.take_along_axis(logp, jnp.where(keep, y, 0)[:, None], axis=1)[:, 0]
        return (nll * keep).sum() / keep.sum()

    value, grad = jax_run(c, fn)
    assert np.isnan(value) and np.isnan(grad).all()
    check("empty_mean=nan_grad", c, value, grad)


def test_label_oob_variants_are_what_jax_indexing_does(jnp) -> None:
    import jax

    def take(mode):
        def fn(x, y):
            logp = jax.nn.log_softmax(x, axis=1)
            return -jnp.take_along_axis(logp, jnp.asarray(y)[:, None], axis=1, mode=mode)[:, 0].mean()

        return fn

    # An obvious port passes the ignored labels as labels. JAX gathers first normalise negative
    # indices (-1 reads class C-1), then fill out-of-range ones with NaN (the default) or clamp them.
    c = case("multiclass-n64-c10-f64-iim1-mean")
    check("label_oob=wrap", c, *jax_run(c, take(None)))
    c = case("multiclass-n64-c10-f64-iim100-mean")
    check("label_oob=clip", c, *jax_run(c, take("clip")))
    # optax computes logsumexp(x) - x[y]: the filled NaN kills the value, the logsumexp term keeps a gradient
    import optax

    check("weight_norm=N+label_oob=nan", c,
          *jax_run(c, lambda x, y: optax.losses.softmax_cross_entropy_with_integer_labels(x, y).mean()))  # fmt: skip
    # one_hot of an ignored label is a zero row: with smoothing, smooth_labels still gives it e/C everywhere
    c = case("smoothed-n64-c10-f64-iim100-ls0.1-mean")
    onehot = lambda x, y: optax.losses.softmax_cross_entropy(  # noqa: E731
        x, optax.smooth_labels(jax.nn.one_hot(y, c.n_classes), 0.1)
    ).mean()
    check("weight_norm=N+label_oob=zero", c, *jax_run(c, onehot))
    # optax's axis=-1 default on a K-dim input passed with classes on axis 1
    c = case("soft-n8-c10-d16-f64-pt-mean")
    check("class_axis=-1", c, *jax_run(c, lambda x, y: optax.losses.safe_softmax_cross_entropy(x, y).mean()))


def test_smoothing_last_axis_is_optax_smooth_labels_on_binary_targets(jnp) -> None:
    import optax

    c = case("smoothed-hard-n64-c4-f64-ls0.1-mean")
    fn = lambda x, y: optax.losses.sigmoid_binary_cross_entropy(x, optax.smooth_labels(y, 0.1)).mean()  # noqa: E731
    check("smoothing=last_axis", c, *jax_run(c, fn))


def test_every_variant_is_tested_here() -> None:
    import inspect

    src = inspect.getsource(inspect.getmodule(test_every_variant_is_tested_here))
    checked = {name for arg in re.findall(r'check\(\s*"([^"]+)"', src) for name in arg.split("+")}
    untested = [v.name for v in V.VARIANTS if v.name not in checked and not v.name.startswith("computed_in=")]
    assert untested == ["weight_norm=count"] or not untested, untested


def test_variants_do_not_apply_where_they_mean_nothing() -> None:
    plain = Inputs(np.zeros((2, 3)), np.array([0, 1]))
    for name in ("weight_norm=N", "label_oob=wrap", "prob_clamp=log>=-100", "empty_mean=0", "class_axis=-1"):
        assert not V.BY_NAME[name].applies(LossSpec(), plain), name  # e.g. no weights, no ignore_index: N == sum w
        assert V.evaluate_variants((V.BY_NAME[name],), LossSpec(), plain) is None, name
    assert isinstance(V.evaluate_variants((V.BY_NAME["reduction=sum"],), LossSpec(), plain), Evaluation)
    # two variants that set the same field do not combine
    assert V.BY_NAME["label_oob=clip"].conflicts(V.BY_NAME["label_oob=wrap"])
    assert (
        V.evaluate_variants(
            (V.BY_NAME["weight_norm=N"], V.BY_NAME["weight_norm=count"]),
            LossSpec(weighted=True),
            Inputs(np.zeros((2, 3)), np.array([0, 1]), np.ones(3)),
        )
        is None
    )


# -- MLX (float32: its float64 exp is a float32 polynomial, ml-explore/mlx#3047) --------------------------------


@pytest.fixture(scope="module")
def mx():
    return pytest.importorskip("mlx.core", reason="MLX is not installed")


def mlx_run(mx, c: Case, fn):
    """fn(x, y) -> loss in MLX on c's arrays (c's dtype), and the gradient of its sum."""
    inputs = c.inputs()
    dt = getattr(mx, c.dtype)
    x = mx.array(inputs.x, dtype=dt)
    y = mx.array(inputs.target, dtype=mx.int32 if c.spec.target == "index" else dt)
    grad = mx.grad(lambda x: fn(x, y).sum())(x)
    return np.array(fn(x, y)).astype(np.float64), np.array(grad).astype(np.float64)


def test_mlx_variants_are_its_losses(mx) -> None:
    """reduction=none: cross_entropy's default; targets_sum_to_one: its probability-target formula with the max held
    constant; prob_clamp=nan_grad: binary_cross_entropy(with_logits=False)'s clip differentiated at p in {0, 1}."""
    import mlx.nn as nn

    c = case("multiclass-n64-c10-f32-mean")
    check("reduction=none", c, *mlx_run(mx, c, lambda x, y: nn.losses.cross_entropy(x, y)))
    c = case("edge-unnormalised-n64-c10-f32-pt-mean")
    check("targets_sum_to_one", c, *mlx_run(mx, c, lambda x, y: nn.losses.cross_entropy(x, y, reduction="mean")))
    c = case("binary-p01-n64-c4-f32-prob-mean")
    bce = lambda x, y: nn.losses.binary_cross_entropy(x, y, with_logits=False)  # noqa: E731
    check("prob_clamp=nan_grad", c, *mlx_run(mx, c, bce))


# -- PaddlePaddle (3.3.1, CPU) ----------------------------------------------------------------------------------

# Paddle segfaults when imported after TensorFlow (the keras tests above import it): import it now, at collection.
if "tensorflow" not in sys.modules:
    with contextlib.suppress(ImportError), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its C++ extension helper warns that ccache is missing
        import paddle  # noqa: F401


def paddle_run(c: Case, fn):
    """fn(F, x, y, w) -> loss in Paddle on c's arrays (c's dtype), and the gradient of its sum."""
    if "paddle" not in sys.modules and "tensorflow" in sys.modules:
        pytest.skip("paddle segfaults when imported after tensorflow, which an earlier module imported")
    paddle = pytest.importorskip("paddle", reason="paddlepaddle is not installed")
    inputs = c.inputs()
    x = paddle.to_tensor(inputs.x, dtype=c.dtype, stop_gradient=False)
    y = paddle.to_tensor(inputs.target, dtype="int64" if c.spec.target == "index" else c.dtype)
    w = None if inputs.weight is None else paddle.to_tensor(inputs.weight, dtype=c.dtype)
    loss = fn(paddle.nn.functional, x, y, w)
    (grad,) = paddle.grad(loss.sum(), x)
    return loss.numpy().astype(np.float64), grad.numpy().astype(np.float64)


def test_paddle_variants_are_its_cross_entropy() -> None:
    """sample_weight=t@w: soft labels (and smoothed ones, Paddle#47813) weighted per sample by label @ weight;
    none_shape=keepdim: soft labels' (N, 1) loss; logits_clip=-64: its softmax kernels clip x - max(x) at -64."""
    c = case("soft-n64-c10-f64-pt-w-mean")
    check("sample_weight=t@w", c, *paddle_run(c, lambda F, x, y, w: F.cross_entropy(x, y, weight=w, soft_label=True)))
    c = case("soft-n64-c10-f64-pt-none")
    check("none_shape=keepdim", c, *paddle_run(c, lambda F, x, y, w: F.cross_entropy(x, y, soft_label=True, reduction="none")))
    for prefix in ("edge-big-n64-c10-f64", "edge-masked-n64-c10-f64-mean"):
        c = case(prefix)
        check("logits_clip=-64", c, *paddle_run(c, lambda F, x, y, w: F.cross_entropy(x, y)))


# -- the seed articles' hand-written NumPy (adapters/handwritten.py) ------------------------------------------------


def test_handwritten_numpy_variants_are_the_seed_articles_code() -> None:
    """probs_rounded=3: seed 004's softmax rounded to 3 decimals before its log, run as the article writes it (its
    value alone: the rounded loss is piecewise constant, gradient 0); prob_clip=1e-7 on logits: a NumPy softmax
    clipped to [1e-7, 1 - 1e-7] before its log, differentiated by the complex step."""
    from adapters.numerical import complex_step
    from adapters.numpy_adapter import ADAPTER

    c = case("documented-seed004-n3-c3-f64")
    r = next(r for r in ADAPTER.run_case(c, "cpu") if r.api == "numpy.seed004_rounded_softmax_nll")
    assert r.recipe == "native" and r.grad is None
    check("probs_rounded=3", c, r.value, np.zeros(c.shape))
    c = case("edge-big-n64-c10-f64-mean")
    y = c.inputs().target

    def clipped(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return -np.log(np.clip(e / e.sum(axis=1, keepdims=True), 1e-7, 1 - 1e-7))[np.arange(len(y)), y].mean()

    check("prob_clip=1e-7", c, clipped(c.inputs().x), complex_step(clipped, c.inputs().x))


def test_label_oob_nan_value_is_a_nan_class_weight_of_a_masked_element(jnp) -> None:
    """Keras on JAX, SparseCategoricalCrossentropy(ignore_class=-100)(y, x, sample_weight=ops.take(w, y)), written
    out in jnp (keras/src/losses/loss.py): jnp.take fills NaN for -100 (outside [-C, C)), ignore_class zeroes the
    element's loss with a where (no gradient) and its weight with a 0 mask, whose product with NaN is NaN in the
    value only; the masked mean divides by the kept count (weight_norm=count)."""
    import jax

    c = case("multiclass-n64-c10-f64-w-iim100-mean")
    w = jnp.asarray(c.inputs().weight)

    def keras_like(x, y):
        y = jnp.asarray(y)
        keep = y != -100
        sw = jnp.take(w, y)  # NaN where y = -100
        each = jnp.where(keep, -jnp.take_along_axis(jax.nn.log_softmax(x), jnp.where(keep, y, 0)[:, None], 1)[:, 0], 0)
        mask_weight = jnp.where(keep, keep.size / keep.sum(), 0)
        return (each * sw * mask_weight).sum() / keep.size

    value, grad = jax_run(c, keras_like)
    assert np.isnan(value) and np.isfinite(grad).all()
    check("weight_norm=count+label_oob=nan_value", c, value, grad)
