"""The worked examples of the seed articles, as golden cases.

The seed articles are five Chinese-language posts on cross-entropy that this project grew from, cited by
their titles (`SEEDS`): seed 000 is numbered 000, and so on, everywhere in the repository.

Each keeps the numbers its article printed (`claimed`). Most are right to the printed digits;
two are not, and those are the porting mistakes the harness exists to explain:

- seed 001 passes probabilities [0.3, 0.3, 0.4] to nn.CrossEntropyLoss (which reads them as
  logits) and prints -log(0.4) = 0.9163, the loss of the *probabilities* for class 2 (its one-hot
  label [0, 0, 1]). CrossEntropyLoss on those inputs gives 1.0331. (The article's code line says
  ``labels = torch.tensor([1])``, which contradicts both its label [0, 0, 1] and its -log(0.4); the
  case uses class 2, the label the article reasons with. With class 1 the loss would be 1.1331.)
- seed 004 takes the softmax over dim=0 (the batch) instead of the class axis and gets 1.3654
  (printed later as 0.1365); the cross-entropy of its inputs is 1.0778. Its NLLLoss on the raw
  scores (logits read as log-probabilities) prints -0.1399, which is right for that call.
"""

from __future__ import annotations

import numpy as np

from cases.spec import Case, Inputs, LossSpec

SEEDS = {
    "000": "Pytorch中的CrossEntropy (CrossEntropy in PyTorch)",
    "001": "理解「交叉熵」损失函数(包含自信息、信息熵、KL散度、交叉熵概念整理) (Understanding the cross-entropy loss: "
    "self-information, entropy, KL divergence, cross-entropy)",
    "002": "python交叉熵函数 numpy 交叉熵(三) (Cross-entropy functions in Python and NumPy, part 3)",
    "003": "多分类交叉熵 (multi-class cross-entropy: integer labels, float labels, label smoothing)",
    "004": "Pytorch损失函数torch.nn.NLLLoss()的使用 (Using PyTorch's torch.nn.NLLLoss(), by Jeremy_lf)",
}

# (name, spec, x, target, claimed (label, value) pairs, note)
_EXAMPLES = (
    (
        "seed000",
        LossSpec(),
        [[-1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]],
        [1, 1, 0],
        (("nn.CrossEntropyLoss()(input, target)", 0.1269),),
        "000: CrossEntropyLoss of 3 samples, each -log(e/(e+e^-1)).",
    ),
    (
        "seed003a",
        LossSpec(),
        [[0.5, 0.3], [0.4, 0.8]],
        [0, 1],
        (("nn.CrossEntropyLoss()", 0.5556), ("nn.NLLLoss()(LogSoftmax(x))", 0.5556)),
        "003: integer labels; CrossEntropyLoss equals NLLLoss after LogSoftmax.",
    ),
    (
        "seed003b",
        LossSpec(target="prob"),
        # torch.manual_seed(0); torch.randn(2, 2) and torch.randn(2, 2).softmax(dim=1), as float32 values
        # (the article prints them to 4 decimals, which moves the loss to 1.03213).
        [[1.5409960746765137, -0.293428897857666], [-2.1787893772125244, 0.5684312582015991]],
        [[0.5778791308403015, 0.4221208691596985], [0.3930094540119171, 0.6069905161857605]],
        (("F.cross_entropy(logits, target)", 1.0322),),
        "003: probability targets drawn after torch.manual_seed(0).",
    ),
    (
        "seed003c",
        LossSpec(label_smoothing=0.3),
        [[0.5, 0.3, 0.9], [0.4, 0.8, 0.1]],
        [0, 1],
        (("nn.CrossEntropyLoss(label_smoothing=0.3)", 1.0302),),
        "003: label smoothing 0.3 over C=3 classes.",
    ),
    (
        "seed001",
        LossSpec(),
        [[0.3, 0.3, 0.4]],
        [2],
        (("nn.CrossEntropyLoss()(outputs, labels)", 0.9163),),
        "001: probabilities passed to CrossEntropyLoss as logits; the printed 0.9163 is -log(0.4), "
        "not what CrossEntropyLoss returns for these inputs.",
    ),
    (
        "seed001intended",
        LossSpec(input="probs"),
        [[0.3, 0.3, 0.4]],
        [2],
        (("-log(0.4), the article's hand computation", 0.9163),),
        "001 as the article meant it: probabilities [0.3, 0.3, 0.4], one-hot label [0, 0, 1].",
    ),
    (
        "seed004",
        LossSpec(),
        [[1.1879, 1.0780, 0.5312], [-0.3499, -1.9253, -1.5725], [-0.6578, -0.0987, 1.1570]],
        [0, 1, 2],
        (("softmax(dim=0), log, mean NLL by hand", 1.3654), ("nn.CrossEntropyLoss() as printed", 0.1365)),
        "004: the article's softmax runs over dim=0 (the batch), not the class axis.",
    ),
    (
        "seed004nll",
        LossSpec(input="log_probs"),
        [[1.1879, 1.0780, 0.5312], [-0.3499, -1.9253, -1.5725], [-0.6578, -0.0987, 1.1570]],
        [0, 1, 2],
        (("nn.NLLLoss()(input, target)", -0.1399),),
        "004: NLLLoss on raw scores reads them as log-probabilities.",
    ),
)


def documented_cases(dtypes: tuple[str, ...] = ("float64", "float32")) -> list[Case]:
    """The seeds' examples in float64 and in float32 (what the articles ran)."""
    cases = []
    for name, spec, x, target, claimed, note in _EXAMPLES:
        x = np.asarray(x, dtype=np.float64)
        t = np.asarray(target, dtype=np.int64 if spec.target == "index" else np.float64)
        for dtype in dtypes:
            cases.append(
                Case(
                    kind="documented",
                    spec=spec,
                    shape=x.shape,
                    dtype=dtype,
                    name=name,
                    data=Inputs(x=x, target=t),
                    claimed=claimed,
                    note=note,
                )
            )
    return cases
