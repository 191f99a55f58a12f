"""Cross-entropy expectations that the frameworks' own test suites assert, as data.

Each `PeerVector` is one literal input (or a few rows of one) from a peer project's test, with the
number(s) that test asserts, its tolerance, and what the peer's result means in the harness's
canonical (PyTorch) semantics (`adapters/reference.py`): which ``harness.check`` options reproduce
it. Arrays are in PyTorch layout (classes on axis 1): a peer's classes-last array of rank > 2 is
stored as ``np.moveaxis(a, -1, 1)`` of it.

Every expected number was checked against an independent 50-digit mpmath evaluation of the
canonical formulas (or, where the peer computes it with a NumPy formula in the test, that formula
re-evaluated in float64); where a peer's literal is only accurate to its printed digits the note
says so, and its tolerance is the peer's own.

Fields:
  expected: the peer's number: the reduced loss, or every element for ``reduction='none'``
    (the shape the harness gives ``none``: (N, d1, ..) for softmax, x's shape for sigmoid);
    None where the peer asserts only the gradient.
  expected_grad: the peer's gradient of the reduced loss (of the sum of the elements for
    ``none``), in x's (PyTorch) layout, or None.
  rtol, atol: the peer's tolerance, |actual - expected| <= atol + rtol * |expected| element-wise
    (Keras' ``assertAlmostEqual`` at 3 decimals is ``atol=1.5e-3, rtol=0``).
  peer_specific: why the peer's number differs from the canonical one ('' where it does not);
    then ``exact``/``exact_grad`` hold the canonical values (None: the same as the peer's), and
    ``peer_api`` names the API whose ``native`` row reproduces the peer's behaviour.
  sample_weight: per-element weights (``harness.check(sample_weight=...)``), broadcast to the loss
    elements: (N, d1..) for softmax, x's shape for sigmoid; None for none.
  peer_variant: for a peer-specific vector, the variant of `adapters/variants.py` that is the peer's
    behaviour: the reference under it gives the peer's number, and the native row of ``peer_api``
    names it in its explanation ('' where not asserted).
  undefined: the labels leave the canonical loss without a value (outside [0, C): PyTorch raises); the
    reference marks it undefined (NaN where it has no value) and no row may be ``ok``.
  raises: a regex of the error the peer's own test expects ``peer_api`` to raise with on the CPU
    (where the harness runs it); its native rows must be ``raised`` with it.
  frameworks: what the test runs the vector through (``harness.check(frameworks=...)``).
  needs: what the harness lacks to express the vector ('' = expressible now); such vectors are
    recorded whole and skipped until it does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

INF = math.inf
NAN = math.nan
# harness.check starts one worker per framework, two at a time: TensorFlow's takes ~5 s to start and
# numpy's and torch's start beside it, but jax's would add ~1 s. So the vectors chosen to run TensorFlow
# (its layouts, its native rows, most of Keras' recipes) run without jax, and the others without
# TensorFlow (~2.6 s each), which keeps the test module near a minute and a half on 2 cores.
WITH_TF = "numpy,torch,tensorflow"
NO_TF = "numpy,torch,jax"

KERAS = "keras-team/keras@04bf53803f04e2af22c601df4748345aa405f704:keras/src/losses/losses_test.py"
OPTAX = "google-deepmind/optax@069c0ab6d8f8b691eb276aa388b2c18687225873:optax/losses/_classification_test.py"
TF_XENT_BASE = (
    "tensorflow/tensorflow@0304934138cbfabd338ec432a630a9c3c1191564:"
    "tensorflow/python/kernel_tests/nn_ops/xent_op_test_base.py"
)
TF_XENT = "tensorflow/tensorflow@2d3f527c2b726039f8974a03916cbcfa248cae22:tensorflow/python/kernel_tests/nn_ops/xent_op_test.py"
TF_SPARSE = (
    "tensorflow/tensorflow@01275c645e5b03621d995359797421aac6e84c76:"
    "tensorflow/python/kernel_tests/sparse_xent_op_test.py"
)
TORCH = "pytorch/pytorch@74f2fa66feec00335f72813782f4802e80bff4cb:test/test_nn.py"

KERAS_3_DECIMALS = {"rtol": 0.0, "atol": 1.5e-3}  # keras testing.TestCase.assertAlmostEqual(decimal=3)
KERAS_ALLCLOSE = {"rtol": 1e-6, "atol": 1e-6}  # keras testing.TestCase.assertAllClose defaults
TF_ALLCLOSE = {"rtol": 1e-6, "atol": 1e-6}  # tf.test.TestCase.assertAllClose defaults (float32)
TORCH_FLOAT32 = {"rtol": 1.3e-6, "atol": 1e-5}  # torch.testing assertEqual defaults for float32

# the three logits rows of Keras' Categorical/SparseCategoricalCrossentropyTest
KERAS_LOGITS = [[8.0, 1.0, 1.0], [0.0, 9.0, 1.0], [2.0, 3.0, 5.0]]
EYE3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
# tf.nn xent tests: "batch 0 is the boring uniform distribution, batch 1 has a bit of difference"
TF_FEATURES = [[1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0]]
OPTAX_YS = [[10.0, 1.0, -2.0], [1.0, 4.0, 0.2]]
TAIL_LOGIT = 37.42994775023705  # exp(-37.42994775023705) == 2**-54 in float64
TAIL = 5.551115123125776e-17
TAIL40 = 4.248354255291589e-18  # softmax of a 0 logit beside a 40 among 10 classes
TAIL40_TARGET = -3.8235188297624297e-17  # -9 * exp(-40), the test's own expectation
SP10 = 4.539889921686465e-05  # softplus(-10) = log1p(exp(-10)): the loss of a logit 10 on its own side


@dataclass(frozen=True)
class PeerVector:
    id: str
    source: str  # "owner/repo@commit:path::Class::test_name"
    x: list
    target: list
    options: dict[str, Any]  # harness.check keyword arguments (family, input, target_kind, ...)
    expected: Any  # float, nested list (reduction='none'), or None
    rtol: float
    atol: float
    dtype: str = "float64"  # x's dtype: the dtype every framework computes in
    weight: list | None = None  # class weights (softmax) or pos_weight (sigmoid), (C,)
    expected_grad: list | None = None
    peer_specific: str = ""
    peer_api: str = ""
    exact: Any = None
    exact_grad: list | None = None
    sample_weight: Any = None
    peer_variant: str = ""
    undefined: bool = False
    raises: str = ""
    frameworks: str = WITH_TF
    needs: str = ""
    note: str = ""


VECTORS: tuple[PeerVector, ...] = (
    # ---------------------------------------------------------------- Keras 3 -------------------
    PeerVector(
        id="keras-scce-logits-none",
        source=f"{KERAS}::SparseCategoricalCrossentropyTest::test_no_reduction",
        x=KERAS_LOGITS,
        target=[0, 1, 2],  # y_true [[0], [1], [2]]
        options={"input": "logits", "reduction": "none"},  # from_logits=True, reduction=None
        expected=[0.001822, 0.000459, 0.169846],
        **KERAS_ALLCLOSE,
        note="exact [0.0018221028929252, 0.00045876718223102, 0.16984601955628565]: the literal is good to "
        "its 6 decimals. CategoricalCrossentropyTest::test_no_reduction asserts the same numbers for one-hot y_true.",
    ),
    PeerVector(
        id="keras-cce-logits-label-smoothing",
        source=f"{KERAS}::CategoricalCrossentropyTest::test_label_smoothing",
        x=[[100.0, -100.0, -100.0]],
        target=[[1.0, 0.0, 0.0]],
        options={"input": "logits", "target_kind": "prob", "label_smoothing": 0.1, "reduction": "mean"},
        expected=13.333333333333334,  # 400.0 * label_smoothing / 3.0
        **KERAS_3_DECIMALS,
        note="Keras smooths y' = y (1 - e) + e / C, as the canonical semantics; exact 13.333333333333334",
        frameworks=NO_TF,
    ),
    PeerVector(
        id="keras-scce-ignore-class-rank3",
        source=f"{KERAS}::SparseCategoricalCrossentropyTest::test_ignore_class",
        x=[[[0.854, 0.088], [0.698, 0.86], [0.598, 0.018]]],  # np.moveaxis of the (1, 2, 3) classes-last logits
        target=[[-1, 2]],
        options={"input": "logits", "ignore_index": -1, "reduction": "none"},  # ignore_class=-1
        expected=[[0.0, 1.480129]],
        **KERAS_ALLCLOSE,
        note="exact [[0, 1.4801290273922488]]",
    ),
    PeerVector(
        id="keras-cce-probs-renormalised",
        source=f"{KERAS}::CategoricalCrossentropyTest::test_unweighted",
        x=[[0.9, 0.05, 0.05], [0.5, 0.89, 0.6], [0.05, 0.01, 0.94]],
        target=EYE3,
        dtype="float32",
        options={"input": "probs", "target_kind": "prob", "reduction": "mean"},
        expected=0.3239,
        **KERAS_3_DECIMALS,
        peer_specific="Keras renormalises probabilities along the class axis (row 2 sums to 1.99): "
        "mean(-log 0.9, -log(0.89 / 1.99), -log 0.94) = 0.32396813; the canonical loss takes x as it is",
        peer_api="keras.losses.CategoricalCrossentropy",
        exact=0.09458992691078317,
        note="SparseCategoricalCrossentropyTest::test_unweighted asserts the same 0.3239 for y_true [0, 1, 2]",
    ),
    PeerVector(
        id="keras-bce-probs",
        source=f"{KERAS}::BinaryCrossentropyTest::test_unweighted",
        x=[[0.9, 0.1, 0.2], [0.3, 0.8, 0.1], [0.1, 0.2, 0.7]],
        target=EYE3,
        dtype="float32",
        options={"family": "sigmoid", "input": "probs", "reduction": "mean"},
        expected=0.20046903,
        **KERAS_ALLCLOSE,
        note="Keras averages over the last axis, then over the batch: with equal rows that is the mean over "
        "all elements. Exact on the float32 inputs 0.2004691847242915 (the literal is Keras' float32 result)",
    ),
    PeerVector(
        id="keras-bce-probs-clipped",
        source=f"{KERAS}::BinaryCrossentropyTest::test_unweighted",
        x=[[1.0, 1.0], [1.0, 0.0]],
        target=[[1.0, 0.0], [1.0, 0.0]],
        dtype="float32",
        options={"family": "sigmoid", "input": "probs", "reduction": "mean"},
        expected=3.98559,
        **KERAS_3_DECIMALS,
        peer_specific="Keras clips probabilities to [1e-7, 1 - 1e-7]: the x = 1 with target 0 costs "
        "-log(1.1920929e-7) = 15.94 instead of -log(0) = inf",
        peer_api="keras.losses.BinaryCrossentropy",
        exact=INF,
    ),
    PeerVector(
        id="keras-bce-logits-label-smoothing",
        source=f"{KERAS}::BinaryCrossentropyTest::test_label_smoothing",
        x=[[10.0, -10.0, -10.0]],
        target=[[1.0, 0.0, 1.0]],
        options={"family": "sigmoid", "input": "logits", "label_smoothing": 0.1, "reduction": "mean"},
        expected=3.5,  # (10.0 + 5.0 * label_smoothing) / 3.0
        **KERAS_3_DECIMALS,
        note="Keras smooths y' = y (1 - e) + e / 2, as the canonical sigmoid semantics; exact 3.500045398899217 "
        "(the literal drops the softplus(-10) = 4.5e-5 terms)",
    ),
    PeerVector(
        id="keras-cce-logits-sample-weight",
        source=f"{KERAS}::CategoricalCrossentropyTest::test_sample_weighted",
        x=KERAS_LOGITS,
        target=EYE3,
        options={"input": "logits", "target_kind": "prob", "reduction": "mean"},
        expected=0.31829,
        **KERAS_3_DECIMALS,
        sample_weight=[1.2, 3.4, 5.6],
        note="Keras 'sum_over_batch_size': sum_i sw_i l_i / N (N = 3, not sum(sw)), the canonical mean of "
        "sample-weighted probability targets; exact 0.3182946804687651",
    ),
    PeerVector(
        id="keras-cce-logits-scalar-weight",
        source=f"{KERAS}::CategoricalCrossentropyTest::test_scalar_weighted",
        x=KERAS_LOGITS,
        target=EYE3,
        options={"input": "logits", "target_kind": "prob", "reduction": "mean"},
        expected=0.1317,
        **KERAS_3_DECIMALS,
        sample_weight=2.3,
        note="a scalar sample weight scales the mean: 2.3 * 0.0573 ...; exact 0.13196394871743876",
    ),
    PeerVector(
        id="keras-bce-logits-none-last-axis",
        source=f"{KERAS}::BinaryCrossentropyTest::test_no_reduction",
        x=[[10.0, -10.0, 10.0], [10.0, 10.0, -10.0]],
        target=[[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]],
        options={"family": "sigmoid", "input": "logits", "reduction": "none"},
        expected=[0.0, 6.666],
        rtol=1e-6,
        atol=1e-3,
        peer_specific="Keras BinaryCrossentropy(reduction=None) averages over the last axis (one loss per row), "
        "which no canonical reduction gives: the canonical 'none' is one loss per element",
        peer_api="keras.losses.BinaryCrossentropy",
        peer_variant="mean_over_last_axis",
        exact=[[SP10, SP10, SP10], [10.0 + SP10, SP10, 10.0 + SP10]],
        note="the row means of the exact per-element losses are [4.5398899216864647e-05, 6.6667120655658835]",
    ),
    PeerVector(
        id="keras-bce-logits-sample-weight",
        source=f"{KERAS}::BinaryCrossentropyTest::test_sample_weighted",
        x=[[10.0, -10.0, 10.0], [10.0, 10.0, -10.0]],
        target=[[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]],
        options={"family": "sigmoid", "input": "logits", "reduction": "mean"},
        expected=10.0,
        **KERAS_3_DECIMALS,
        sample_weight=[[4.0], [3.0]],  # Keras' per-row [4.0, 3.0], broadcast to the elements of each row
        note="(4 * mean(row 0) + 3 * mean(row 1)) / 2 with Keras' last-axis mean: the same as the canonical mean of "
        "the element-wise weighted losses, sum_ij s_i l_ij / 6; exact 10.000158896147259",
    ),
    # ---------------------------------------------------------------- optax ---------------------
    PeerVector(
        id="optax-softmax-ce-batched",
        source=f"{OPTAX}::SoftmaxCrossEntropyTest::test_batched",
        x=OPTAX_YS,
        target=[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]],
        dtype="float32",
        options={"input": "logits", "target_kind": "prob", "reduction": "none"},  # optax: per-example losses
        expected=[9.00013, 3.0696733],
        rtol=1e-7,  # np.testing.assert_allclose default
        atol=1e-4,
        frameworks=NO_TF,
        note="exact on the float32 inputs [9.000129545625043, 3.0696732908871464]",
    ),
    PeerVector(
        id="optax-safe-softmax-ce-neg-inf",
        source=f"{OPTAX}::SafeSoftmaxCrossEntropyTest::test_batched",
        x=[*OPTAX_YS, [-INF, 0.0, 0.0], [-INF, 0.0, 0.0], [-INF, 0.0, -INF]],
        target=[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.4, 0.3, 0.3], [0.0, 1.0, 0.0]],
        dtype="float32",
        options={"input": "logits", "target_kind": "prob", "reduction": "none"},
        expected=[9.00013, 3.0696733, 0.693147, INF, 0.0],
        rtol=1e-7,
        atol=1e-4,
        frameworks=NO_TF,
        note="canonical: a zero target on a -inf logit contributes 0 (rows 3 and 5), a positive one inf (row 4)",
    ),
    PeerVector(
        id="optax-softmax-ce-integer-labels",
        source=f"{OPTAX}::SoftmaxCrossEntropyWithIntegerLabelsTest::test_consistent_with_softmax_cross_entropy_batched",
        x=OPTAX_YS,
        target=[1, 0],
        dtype="float32",
        options={"input": "logits", "reduction": "none"},
        expected=[9.00013, 3.0696733],
        rtol=1e-7,
        atol=1e-4,
        frameworks=NO_TF,
        note="the test asserts equality (rtol 1e-6) with softmax_cross_entropy on one_hot(labels), whose literal "
        "values SoftmaxCrossEntropyTest pins (atol 1e-4): those are the numbers and the tolerance here",
    ),
    PeerVector(
        id="optax-sigmoid-bce-huge-logit",
        source=f"{OPTAX}::SigmoidCrossEntropyTest::test_sigmoid_cross_entropy (parameters 1)",
        x=[-1e09, -1e-09],
        target=[1.0, 0.0],
        options={"family": "sigmoid", "input": "logits", "reduction": "mean"},  # jnp.mean of the per-element losses
        expected=5e08,
        rtol=1e-6,
        atol=1e-6,
        frameworks=NO_TF,
        note="exact 500000000.34657359. The test's other 9 parameter sets (mean 5e08, 0.3465736 or 0.6931472 for "
        "logits +-1e9, +-1e-9, 0) are the same computation; parameters 2 ([-1e9, -1e-9], [0, 1]) -> 0.3465736 is "
        "exact 0.34657359052997265",
    ),
    # ---------------------------------------------------------------- TensorFlow kernels --------
    PeerVector(
        id="tf-xent-np-xent",
        source=f"{TF_XENT_BASE}::XentOpTestBase::testNpXent",
        x=TF_FEATURES,
        target=[[0.0, 0.0, 0.0, 1.0], [0.0, 0.5, 0.5, 0.0]],
        options={"input": "logits", "target_kind": "prob", "reduction": "none"},
        expected=[1.3862, 1.9401],
        expected_grad=[[0.25, 0.25, 0.25, -0.75], [0.0321, -0.4129, -0.2632, 0.6439]],
        rtol=1e-3,
        atol=1e-3,
        note="the test pins its NumPy _npXent with these hand-computed numbers; exact loss "
        "[1.3862943611198906, 1.9401896985611953]",
        frameworks=NO_TF,
    ),
    PeerVector(
        id="tf-sparse-xent-np-xent",
        source=f"{TF_SPARSE}::SparseXentTest::testNpXent",
        x=TF_FEATURES,
        target=[3, 0],
        options={"input": "logits", "reduction": "none"},
        expected=[1.3862, 3.4420],
        expected_grad=[[0.25, 0.25, 0.25, -0.75], [-0.968, 0.087, 0.237, 0.6439]],
        rtol=1e-3,
        atol=1e-3,
        note="exact loss [1.3862943611198906, 3.4401896985611953]: the literal 3.4420 is off by 1.9e-3 (from "
        "-log(0.032) in its comment) and passes only through rtol * 3.44",
        frameworks=NO_TF,
    ),
    PeerVector(
        id="tf-xent-3d-classes-first",
        source=f"{TF_XENT_BASE}::XentOpTestBase::test3D (dim=0)",
        # the test's (3, 2, 4) arrays reduce over axis 0 (3 classes): np.moveaxis(a, 0, 1) -> (2, 3, 4)
        x=[
            [[1.0, 1.0, 1.0, 1.0], [2.0, 3.0, 4.0, 5.0], [5.0, 4.0, 3.0, 2.0]],
            [[1.0, 2.0, 3.0, 4.0], [6.0, 7.0, 8.0, 9.0], [1.0, 2.0, 3.0, 4.0]],
        ],
        target=[
            [[0.0, 0.0, 0.0, 1.0], [0.0, 0.5, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0]],
            [[0.0, 1.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]],
        ],
        dtype="float32",
        options={"input": "logits", "target_kind": "prob", "reduction": "none"},
        expected=[
            [0.0, 1.0235183251522795, 0.1745061083840932, 4.065883903757429],
            [0.006692950860724451, 5.020078852582174, 5.013385901721449, 0.0],
        ],
        **TF_ALLCLOSE,  # assertAllCloseAccordingToType on float32
        note="the expectation is the test's _npXent(dim=0) formula, re-evaluated here in float64 (label columns "
        "along the class axis sum to 0, 1 or 2: the loss is still -sum t log p)",
    ),
    PeerVector(
        id="tf-xent-double-tail-gradient",
        source=f"{TF_XENT}::XentOpTest::testSmallGradientAcrossDtypes (float64, batch_size 1, both target classes)",
        x=[[TAIL_LOGIT, 0.0], [0.0, TAIL_LOGIT]],
        target=[[1.0, 0.0], [0.0, 1.0]],
        options={"input": "logits", "target_kind": "prob", "reduction": "none"},
        expected=None,
        expected_grad=[[-TAIL, TAIL], [TAIL, -TAIL]],
        rtol=1e-14,
        atol=0.0,
        note="the target class's gradient p - 1 = -exp(-a) / (1 + exp(-a)) must keep its 5.6e-17, which "
        "1 - softmax rounds to 0; the exact value differs from -exp(-a) by 3e-33",
    ),
    PeerVector(
        id="tf-xent-double-multiclass-tail-gradient",
        source=f"{TF_XENT}::XentOpTest::testDoublePreservesMultiClassTailGradient",
        x=[
            [40.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 40.0],
            [0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        ],
        target=[
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
            [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        ],
        options={"input": "logits", "target_kind": "prob", "reduction": "none"},
        expected=None,
        expected_grad=[
            [TAIL40_TARGET, *[TAIL40] * 9],
            [*[TAIL40] * 9, TAIL40_TARGET],
            [*[0.03438134914410938] * 4, -0.30943214229698424, *[0.03438134914410938] * 5],
        ],
        rtol=1e-13,
        atol=1e-15,
        note="softmax - labels by the test's NumPy formula in float64, with the two target entries replaced "
        "by -9 exp(-40) as the test does; within 1.7e-16 absolute of the exact gradient",
        frameworks=NO_TF,
    ),
    PeerVector(
        id="tf-xent-general-label-gradients",
        source=f"{TF_XENT}::XentOpTest::testDoublePreservesGeneralLabelGradients (rows 0 and 1)",
        x=[[0.0, 0.0], [0.0, 0.0]],
        target=[[0.0, 0.0], [2.0, 0.0]],
        options={"input": "logits", "target_kind": "prob", "reduction": "none"},
        expected=None,
        expected_grad=[[0.5, 0.5], [-1.5, 0.5]],
        **TF_ALLCLOSE,
        peer_specific="tf.nn.softmax_cross_entropy_with_logits' backprop is softmax(x) - labels, the gradient "
        "only where a label row sums to 1; the canonical gradient -t + p sum(t) is [[0, 0], [-1, 1]]",
        peer_api="tf.nn.softmax_cross_entropy_with_logits",
        exact=[0.0, 1.3862943611198906],
        exact_grad=[[0.0, 0.0], [-1.0, 1.0]],
        note="rows 2-5 of the test hold NaN and inf inputs, which harness.check refuses",
    ),
    PeerVector(
        id="tf-xent-single-class-negative-labels",
        source=f"{TF_XENT_BASE}::XentOpTestBase::testSingleClass",
        x=[[1.0], [-1.0], [0.0], [1.0]],
        target=[[-1.0], [0.0], [1.0], [1.0]],
        dtype="float32",  # the test loops over float16, float32 and bfloat16
        options={"input": "logits", "target_kind": "prob", "reduction": "none"},
        expected=[0.0, 0.0, 0.0, 0.0],
        expected_grad=[[2.0], [1.0], [0.0], [0.0]],
        **TF_ALLCLOSE,
        peer_specific="backprop softmax(x) - labels = 1 - label with one class; the canonical gradient "
        "-t + p sum(t) is 0 for every row (the loss does not depend on x when C = 1)",
        peer_api="tf.nn.softmax_cross_entropy_with_logits",
        exact=[0.0, 0.0, 0.0, 0.0],
        exact_grad=[[0.0], [0.0], [0.0], [0.0]],
        peer_variant="grad_assumes_normalised_targets",
    ),
    PeerVector(
        id="tf-sparse-xent-invalid-label-gpu",
        source=f"{TF_SPARSE}::SparseXentTest::testInvalidLabelGPU and ::testInvalidLabelCPU",
        x=[[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]],
        target=[4, 3, 0, -1],
        dtype="float32",
        options={"input": "logits", "reduction": "none"},
        expected=[NAN, 1.3862, 3.4420, NAN],
        expected_grad=[[NAN] * 4, [0.25, 0.25, 0.25, -0.75], [-0.968, 0.087, 0.237, 0.6439], [NAN] * 4],
        rtol=1e-3,
        atol=1e-3,
        peer_specific="the GPU kernel gives NaN loss and gradient rows for labels outside [0, C); the CPU "
        "kernel raises instead (testInvalidLabelCPU), as PyTorch does: the canonical loss has no value there",
        peer_api="tf.nn.sparse_softmax_cross_entropy_with_logits",
        undefined=True,
        raises="Received a label value of",  # testInvalidLabelCPU's assertRaisesRegex
        note="the expectation is the GPU kernel's (testInvalidLabelGPU, run_gpu_only); its NaNs are where the "
        "reference has no value, and its defined rows are testNpXent's numbers. harness.check runs on the CPU",
    ),
    # ---------------------------------------------------------------- PyTorch -------------------
    PeerVector(
        id="torch-bce-logits-pos-weight-grad-at-zero",
        source=f"{TORCH}::TestNN::test_bce_with_logits_with_pos_weight_has_correct_grad_at_zero",
        x=[[0.0], [0.0], [0.0]],
        target=[[0.0], [0.0], [0.0]],
        weight=[1.0],
        dtype="float32",
        options={"family": "sigmoid", "input": "logits", "reduction": "sum"},
        expected=None,
        expected_grad=[[0.5], [0.5], [0.5]],
        **TORCH_FLOAT32,
        frameworks=NO_TF,
        note="the test's pos_weight is torch.ones(3, 1), broadcast over x: the same as pos_weight [1.0] per class. "
        "TestNN::test_bce_with_logits_has_correct_grad_at_zero asserts the same gradient without pos_weight; "
        "only the gradient is asserted (the value is 3 log 2)",
    ),
    PeerVector(
        id="torch-ce-ls-weight-default-ignore-mean",
        source=f"{TORCH}::TestNNDeviceType::test_cross_entropy_label_smoothing_weight_ignore_indices "
        "(reduction='mean', label_smoothing=0.15, weight)",
        x=[[0.3, 0.4], [1.0, 2.0]],  # inp1
        target=[-100, 1],
        weight=[0.3, 0.6],
        dtype="float32",
        options={"input": "logits", "ignore_index": -100, "label_smoothing": 0.15, "reduction": "mean"},
        expected=0.3390143742362895,
        **TORCH_FLOAT32,
        note="the test asserts equality with the loss of row 1 alone (inp2[1:], targ[1:]): the mean divides "
        "by w[1] only; that loss is evaluated here in float64",
        frameworks=NO_TF,
    ),
    PeerVector(
        id="torch-ce-ls-positive-ignore-sum",
        source=f"{TORCH}::TestNNDeviceType::test_cross_entropy_label_smoothing_weight_ignore_indices "
        "(reduction='sum', label_smoothing=0.05, ignore_index=2)",
        x=[[0.3, 0.4], [1.0, 2.0]],
        target=[2, 1],
        dtype="float32",
        options={"input": "logits", "ignore_index": 2, "label_smoothing": 0.05, "reduction": "sum"},
        expected=0.33826168751822284,
        **TORCH_FLOAT32,
        note="ignore_index 2 == C, outside the classes; the expectation is the loss of row 1 alone, in float64",
        frameworks=NO_TF,
    ),
    PeerVector(
        id="torch-nll-total-weight-zero",
        source=f"{TORCH}::TestNNDeviceType::test_nll_loss_total_weight_is_zero (input_size [2, 3])",
        x=[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]],
        target=[0, 0],
        weight=[0.0, 0.0, 0.0],
        dtype="float32",
        options={"input": "log_probs", "reduction": "mean"},
        expected=NAN,
        rtol=0.0,
        atol=0.0,
        frameworks=NO_TF,
        note="nll_loss on torch.ones (not log-probabilities); the same test asserts reduction='sum' -> 0.0 and "
        "'none' -> zeros. Every weight is 0, so the value does not depend on x: 0 / 0",
    ),
    PeerVector(
        id="torch-nll-all-ignored",
        source=f"{TORCH}::TestNNDeviceType::test_nll_loss_all_ignored (input_size [2, 3])",
        x=[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]],
        target=[0, 0],
        dtype="float32",
        options={"input": "log_probs", "ignore_index": 0, "reduction": "mean"},
        expected=NAN,
        rtol=0.0,
        atol=0.0,
        frameworks=NO_TF,
        note="nll_loss on torch.ones with every target ignored; also asserted: 'sum' -> 0, 'none' -> zeros",
    ),
)
