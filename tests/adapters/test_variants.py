"""Each variant reproduces a real framework's behaviour on a case where it matters, and is
distinguishable from the canonical semantics there."""

from __future__ import annotations

import os

import numpy as np
import pytest

from adapters import variants as V
from adapters.reference import Evaluation, evaluate
from cases.generator import default_cases
from cases.spec import Case, Inputs, LossSpec
from harness.metrics import compare
from harness.tolerances import tolerance

CASES = {c.id: c for c in default_cases(dtypes=("float64", "float32", "float16"))}


def case(prefix: str) -> Case:
    return next(c for i, c in CASES.items() if i.startswith(prefix))


def check(variant: V.Variant, c: Case, value, grad=None) -> None:
    """The variant reproduces (value, grad) on case c, and the canonical semantics do not."""
    inputs = c.inputs()
    ev = variant.fn(c.spec, inputs, c.dtype)
    assert ev is not None, f"{variant.name} does not apply to {c.id}"
    tol = max(tolerance(c.dtype, c.n_classes, c.n_elements), 1e-6)
    ref = evaluate(c.spec, inputs)
    value = np.asarray(value, np.float64)
    grad = ev.grad if grad is None else np.asarray(grad, np.float64)
    got = compare(value, grad, ev, c.dtype, tol)
    assert got.outcome == "ok", (
        f"{variant.name} on {c.id}: framework value={value.ravel()[:3]} variant={np.ravel(ev.value)[:3]} {got}"
    )
    canonical = compare(value, grad, ref, c.dtype, tol)
    assert canonical.outcome != "ok", f"{variant.name} is indistinguishable from the canonical semantics on {c.id}"


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
            V.BY_NAME["prob_clamp=log>=-100"],
            c,
            *torch_run(torch, c, lambda F, x, y, w, r=c.spec.reduction: F.binary_cross_entropy(x, y, reduction=r)),
        )


def test_probs_passed_as_logits_is_cross_entropy_on_probabilities(torch) -> None:
    c = case("multiclass-n64-c10-f64-prob-mean")
    check(V.BY_NAME["probs_passed_as_logits"], c, *torch_run(torch, c, lambda F, x, y, w: F.cross_entropy(x, y)))


def test_log_probs_passed_as_logits_is_cross_entropy_on_log_probabilities(torch) -> None:
    c = case("multiclass-n64-c10-f64-logp-mean")
    check(V.BY_NAME["log_probs_passed_as_logits"], c, *torch_run(torch, c, lambda F, x, y, w: F.cross_entropy(x, y)))


def test_class_axis_0_is_seed_004s_softmax_over_dim_0(torch) -> None:
    c = case("documented-seed004-n3-c3-f64")
    check(
        V.BY_NAME["class_axis=0"],
        c,
        *torch_run(torch, c, lambda F, x, y, w: F.nll_loss(torch.log(F.softmax(x, dim=0)), y)),
    )


def test_zero_log_zero_is_cross_entropy_with_masked_logits(torch) -> None:
    c = case("edge-masked-n64-c10-f64-pt-mean")
    check(V.BY_NAME["0*log(0)=nan"], c, *torch_run(torch, c, lambda F, x, y, w: F.cross_entropy(x, y)))


def test_computed_in_float16_is_the_half_precision_sum_overflow(torch) -> None:
    c = case("edge-big-n64-c10-f16-mean")
    check(V.BY_NAME["computed_in=float16"], c, *torch_run(torch, c, lambda F, x, y, w: F.cross_entropy(x, y)))


def test_reductions(torch) -> None:
    c = case("multiclass-n64-c10-f64-w-mean")
    check(
        V.BY_NAME["reduction=sum"],
        c,
        *torch_run(torch, c, lambda F, x, y, w: F.cross_entropy(x, y, weight=w, reduction="sum")),
    )
    c = case("multiclass-n64-c10-f64-sum")
    check(V.BY_NAME["reduction=mean"], c, *torch_run(torch, c, lambda F, x, y, w: F.cross_entropy(x, y)))


def test_smoothing_variants_are_the_hand_written_ports(torch) -> None:
    """What a port that builds the smoothed targets by hand computes (1-e on the label, e/(C-1) or e/2 elsewhere)."""
    c = case("smoothed-n64-c10-f64-ls0.1-mean")
    e, k = 0.1, c.n_classes

    def by_hand(on, off):
        return lambda F, x, y, w: F.cross_entropy(x, F.one_hot(y, k).double() * (on - off) + off)

    check(V.BY_NAME["smoothing=C-1"], c, *torch_run(torch, c, by_hand(1 - e, e / (k - 1))))
    check(V.BY_NAME["smoothing=0.5"], c, *torch_run(torch, c, by_hand(1 - e / 2, e / 2)))


def test_soft_targets_renormalised(torch) -> None:
    c = case("edge-unnormalised-n64-c10-f64-pt-mean")
    check(
        V.BY_NAME["soft_targets_renormalised"],
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


def test_weight_norm_n_is_keras_sum_over_batch_size(keras) -> None:
    c = case("multiclass-n64-c10-f64-w-mean")

    def fn(tf, x, inputs):
        sw = inputs.weight[inputs.target]
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)(inputs.target, x, sample_weight=sw)

    check(V.BY_NAME["weight_norm=N"], c, *keras_run(c, fn))


def test_prob_clip_is_keras_from_probabilities(keras) -> None:
    """Keras losses compute in their float32 dtype policy, so these are float32 cases."""
    c = case("binary-p01soft-n64-c4-f32")
    check(
        V.BY_NAME["prob_clip=1e-7"], c, *keras_run(c, lambda tf, x, i: keras.losses.BinaryCrossentropy()(i.target, x))
    )
    c = case("multiclass-n64-c10-f32-prob-mean")  # categorical: divides by the sum, then clips
    x = c.inputs().x
    bump = Case(
        "user", c.spec, c.shape, "float32", data=Inputs(x * 1.1, c.inputs().target)
    )  # probabilities summing to 1.1
    check(
        V.BY_NAME["prob_clip=1e-7"],
        bump,
        *keras_run(bump, lambda tf, x, i: keras.losses.SparseCategoricalCrossentropy()(i.target, x)),
    )


def test_grad_assumes_normalised_targets_is_tf_softmax_xent(keras) -> None:
    c = case("edge-unnormalised-n64-c10-f64-pt-mean")
    fn = lambda tf, x, i: tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=i.target, logits=x))  # noqa: E731
    check(V.BY_NAME["grad_assumes_normalised_targets"], c, *keras_run(c, fn))


def test_label_oob_zero_row_is_tf_one_hot_of_the_ignored_label(keras) -> None:
    c = case("multiclass-n64-c10-f64-iim100-mean")

    def fn(tf, x, i):
        onehot = tf.one_hot(i.target, c.n_classes, dtype=x.dtype)
        return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=onehot, logits=x))

    check(V.BY_NAME["label_oob=zero_row"], c, *keras_run(c, fn))


def test_mean_over_last_axis_is_keras_binary_crossentropy(keras) -> None:
    for prefix in ("binary-hard-n64-c4-f32-sum", "binary-hard-n64-c4-f32-none"):
        c = case(prefix)
        red = c.spec.reduction
        check(V.BY_NAME["mean_over_last_axis"], c,
              *keras_run(c, lambda tf, x, i, r=red: keras.losses.BinaryCrossentropy(from_logits=True, reduction=r)(i.target, x)))  # fmt: skip


def test_sample_weight_is_keras_smoothing_with_class_weights(keras) -> None:
    c = case("smoothed-n64-c10-f32-w-ls0.2-mean")

    def fn(tf, x, i):
        loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2)
        return loss(tf.one_hot(i.target, c.n_classes), x, sample_weight=i.weight[i.target])

    check(V.BY_NAME["sample_weight=w[y]"], c, *keras_run(c, fn))


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
    check(V.BY_NAME["label_oob=wrap"], c, *jax_run(c, take(None)))
    c = case("multiclass-n64-c10-f64-iim100-mean")
    check(V.BY_NAME["label_oob=clip"], c, *jax_run(c, take("clip")))
    # optax computes logsumexp(x) - x[y]: the filled NaN kills the value, the logsumexp term keeps a gradient
    import optax

    check(V.BY_NAME["label_oob=nan"], c,
          *jax_run(c, lambda x, y: optax.losses.softmax_cross_entropy_with_integer_labels(x, y).mean()))  # fmt: skip
    onehot = lambda x, y: -(jax.nn.one_hot(y, c.n_classes) * jax.nn.log_softmax(x, axis=1)).sum(1).mean()  # noqa: E731
    check(V.BY_NAME["label_oob=zero"], c, *jax_run(c, onehot))


def test_smoothing_last_axis_is_optax_smooth_labels_on_binary_targets(jnp) -> None:
    import optax

    c = case("smoothed-hard-n64-c4-f64-ls0.1-mean")
    fn = lambda x, y: optax.losses.sigmoid_binary_cross_entropy(x, optax.smooth_labels(y, 0.1)).mean()  # noqa: E731
    check(V.BY_NAME["smoothing=last_axis"], c, *jax_run(c, fn))


def test_every_variant_is_tested_here() -> None:
    import inspect

    src = inspect.getsource(inspect.getmodule(test_every_variant_is_tested_here))
    untested = [v.name for v in V.VARIANTS if f'"{v.name}"' not in src and not v.name.startswith("computed_in=")]
    assert untested == ["weight_norm=count"] or not untested, untested


def test_variants_do_not_apply_where_they_mean_nothing() -> None:
    plain = Inputs(np.zeros((2, 3)), np.array([0, 1]))
    assert V.weight_norm_n(LossSpec(), plain) is None  # no weights, no ignore_index: N == sum of weights
    assert V.label_oob_wrap(LossSpec(), plain) is None
    assert V.prob_clamp_log_100(LossSpec(), plain) is None
    assert isinstance(V.reduction_sum(LossSpec(), plain), Evaluation)
