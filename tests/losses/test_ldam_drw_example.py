"""The README example — LDAM with DRW dropped into a user's own PyTorch loop — runs as written.

``SNIPPET`` is the text shown in the README, verbatim. The test only shrinks the epoch numbers
(200 → 4, 160 → 2) and supplies a tiny ``loader``.
"""

from __future__ import annotations

import torch

SNIPPET = """\
import torch
import torch.nn.functional as F
from longtail import create_loss
from longtail.rebalance import DeferredReWeighting

counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]  # training examples per class
body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 64), torch.nn.ReLU())
head = torch.nn.Parameter(torch.randn(10, 64) * 0.01)  # LDAM wants cosine logits: no bias
loss_fn = create_loss("ldam", counts, max_m=0.5, s=30)
drw = DeferredReWeighting(counts, start_epoch=160)  # CB weights (beta=0.9999) from epoch 160
opt = torch.optim.SGD([*body.parameters(), head], lr=0.1, momentum=0.9, weight_decay=2e-4)
for epoch in range(200):
    loss_fn.set_class_weights(drw.at_epoch(epoch).class_weights)  # None = uniform before 160
    for x, y in loader:
        logits = F.normalize(body(x), dim=1) @ F.normalize(head, dim=1).T
        loss = loss_fn(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
"""


def test_snippet_runs_and_switches_weights_at_the_drw_epoch():
    g = torch.Generator().manual_seed(0)
    loader = [
        (torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(3)
    ]
    code = SNIPPET.replace("range(200)", "range(4)").replace("start_epoch=160", "start_epoch=2")
    assert code != SNIPPET
    torch.manual_seed(0)  # the snippet's own init uses the global RNG, as a user's code would
    namespace: dict = {"loader": loader}
    exec(compile(code, "<readme-snippet>", "exec"), namespace)
    loss_fn, drw = namespace["loss_fn"], namespace["drw"]
    assert torch.isfinite(namespace["loss"])
    # after the loop the loss holds the DRW weights of the last epoch; before the switch none
    torch.testing.assert_close(loss_fn.class_weights, drw.at_epoch(3).class_weights)
    assert drw.at_epoch(1).class_weights is None
    assert len(SNIPPET.strip().splitlines()) <= 20
