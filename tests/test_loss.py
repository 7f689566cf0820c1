"""cut_loss against a naive full-softmax implementation written the way the reference code computes it."""

import math

import pytest
import torch

from cutalign.loss import cut_loss, log1m_exp


def random_views(B=4, T=6, V=11, seed=0, negative=None):
    """Random logits for the two views, target tokens, a ragged mask, and the label log-probs of each view."""
    g = torch.Generator().manual_seed(seed)
    judgment_logits = torch.randn(B, T, V, generator=g, dtype=torch.float64) * 2
    plain_logits = torch.randn(B, T, V, generator=g, dtype=torch.float64) * 2
    targets = torch.randint(0, V, (B, T), generator=g)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = torch.arange(T)[None, :] < lengths[:, None]
    if negative is None:
        negative = torch.tensor([i % 2 == 1 for i in range(B)])
    return judgment_logits, plain_logits, targets, mask, negative


def label_logps(logits, targets):
    return torch.log_softmax(logits, -1).gather(-1, targets[..., None]).squeeze(-1)


def naive_reference(judgment_logits, plain_logits, targets, mask, negative, threshold, alpha,
                    wp=1.0, wn=1.0, wu=1.0):
    """Token by token, with probabilities from a full softmax, as in wwxu21/CUT's modeling_llama_unlikelihood."""
    pj = torch.softmax(judgment_logits, -1)
    pp = torch.softmax(plain_logits, -1)
    nll_terms, ul_terms = [], []
    for b in range(targets.shape[0]):
        for t in range(targets.shape[1]):
            if not mask[b, t]:
                continue
            y = targets[b, t]
            p_mle = pj[b, t, y] if negative[b] else pp[b, t, y]
            nll_terms.append(-(wn if negative[b] else wp) * torch.log(p_mle))
            if negative[b]:
                p_plain = pp[b, t, y]
                if pj[b, t, y] / p_plain > threshold:
                    ul_terms.append(-alpha * torch.log(1 - p_plain))
                else:
                    ul_terms.append(-wu * torch.log(p_plain))
    nll = torch.stack(nll_terms).mean()
    if ul_terms:
        return (nll + torch.stack(ul_terms).mean()) / 2, nll_terms, ul_terms
    return nll, nll_terms, ul_terms


def cut_on(views, **kwargs):
    """cut_loss on the views, with the reference settings unless ``kwargs`` say otherwise."""
    return cut_loss(*_loss_inputs(views), **{"threshold": 1.1, "alpha": 1.0, "reduction": "reference", **kwargs})


def test_threshold_alpha_and_reduction_are_required():
    """No defaults in the loss function: CUTConfig is the one place they are declared."""
    views = random_views(seed=0)
    for missing in ("threshold", "alpha", "reduction"):
        settings = {"threshold": 1.1, "alpha": 1.0, "reduction": "reference"}
        del settings[missing]
        with pytest.raises(TypeError, match=missing):
            cut_loss(*_loss_inputs(views), **settings)


def _loss_inputs(views):
    judgment_logits, plain_logits, targets, mask, negative = views
    plain = label_logps(plain_logits, targets)
    return torch.where(negative[:, None], label_logps(judgment_logits, targets), plain), plain, mask, negative


@pytest.mark.parametrize("threshold,alpha", [(1.1, 1.0), (1.2, 0.5), (1.0, 1.0), (0.5, 2.0), (1e9, 1.0)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reference_reduction_matches_naive(threshold, alpha, seed):
    views = random_views(seed=seed)
    expected, _, _ = naive_reference(*views, threshold=threshold, alpha=alpha)
    got = cut_on(views, threshold=threshold, alpha=alpha, reduction="reference")
    assert torch.allclose(got.loss, expected, atol=1e-9)


def test_normalized_reduction_matches_naive_sum():
    views = random_views(B=5, seed=3)
    _, nll_terms, ul_terms = naive_reference(*views, threshold=1.1, alpha=0.7)
    expected = (torch.stack(nll_terms).sum() + torch.stack(ul_terms).sum()) / len(nll_terms)
    got = cut_on(views, threshold=1.1, alpha=0.7, reduction="normalized")
    assert torch.allclose(got.loss, expected, atol=1e-9)
    got = cut_on(views, threshold=1.1, alpha=0.7, reduction="normalized", num_items_in_batch=100)
    assert torch.allclose(got.loss, expected * len(nll_terms) / 100, atol=1e-9)


def test_weights_match_naive():
    views = random_views(B=6, seed=4)
    weights = dict(wp=0.3, wn=0.0, wu=0.5)
    expected, _, _ = naive_reference(*views, threshold=1.05, alpha=1.0, **weights)
    got = cut_on(views, threshold=1.05, alpha=1.0, reduction="reference", align_p_weight=0.3, align_n_weight=0.0,
                 unflagged_weight=0.5)
    assert torch.allclose(got.loss, expected, atol=1e-9)


def test_threshold_extremes_flag_nothing_or_everything():
    views = random_views(seed=5)
    negative_tokens = (views[3] & views[4][:, None]).sum()
    assert cut_on(views, threshold=1e12).num_flagged_tokens == 0
    everything = cut_on(views, threshold=1e-12)
    assert everything.num_flagged_tokens == negative_tokens
    assert everything.flagged_fraction == 1.0


def test_alpha_zero_removes_flagged_tokens_contribution():
    views = random_views(seed=6)
    got = cut_on(views, threshold=1e-12, alpha=0.0, reduction="normalized")  # every negative token flagged
    _, nll_terms, _ = naive_reference(*views, threshold=1e-12, alpha=0.0)
    assert got.unlikelihood == 0 and got.misalign_mle == 0  # every negative token is flagged, alpha is 0
    assert torch.allclose(got.loss, torch.stack(nll_terms).mean(), atol=1e-9)


def test_all_positive_batch_is_plain_mle():
    views = random_views(negative=torch.zeros(4, dtype=torch.bool), seed=7)
    _, plain_logits, targets, mask, _ = views
    mean_nll = -(label_logps(plain_logits, targets) * mask).sum() / mask.sum()
    for reduction in ("reference", "normalized"):
        got = cut_on(views, reduction=reduction)
        assert torch.allclose(got.loss, mean_nll, atol=1e-9)
        assert got.num_negative_tokens == 0 and got.unlikelihood == 0 and got.align_n == 0


def test_all_negative_batch_matches_naive():
    views = random_views(negative=torch.ones(4, dtype=torch.bool), seed=8)
    expected, _, _ = naive_reference(*views, threshold=1.1, alpha=1.0)
    assert torch.allclose(cut_on(views, reduction="reference").loss, expected, atol=1e-9)


def test_certain_tokens_stay_finite():
    """p -> 1 under the plain view of a flagged token: log(1 - p) must not be -inf, gradients not NaN."""
    plain = torch.tensor([[0.0, -1e-12, -1e-30, -0.5]], requires_grad=True)
    mle = torch.tensor([[5.0, 5.0, 5.0, 5.0]], requires_grad=True)  # ratio huge: every token flagged
    mask = torch.ones(1, 4, dtype=torch.bool)
    out = cut_loss(mle, plain, mask, torch.tensor([True]), threshold=1.1, alpha=1.0, reduction="reference")
    assert out.num_flagged_tokens == 4
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert torch.isfinite(plain.grad).all() and torch.isfinite(mle.grad).all()


def test_log1m_exp_accuracy_and_finite_gradients():
    x = torch.tensor([-1e-8, -1e-3, -0.5, -0.69, -0.7, -5.0, -50.0, -1e4], dtype=torch.float64, requires_grad=True)
    expected = torch.tensor([math.log(1 - math.exp(v)) if v < -1e-6 else math.log(1e-6) for v in x.tolist()],
                            dtype=torch.float64)
    got = log1m_exp(x)
    assert torch.allclose(got, expected, rtol=1e-6)
    got.sum().backward()
    assert torch.isfinite(x.grad).all()
    edge = torch.tensor([0.0, -0.0, -1e-40], requires_grad=True)
    log1m_exp(edge).sum().backward()
    assert torch.isfinite(edge.grad).all()


def test_padding_values_never_leak():
    """Garbage (inf/NaN) outside the mask must not change the loss or its gradient."""
    views = random_views(seed=9)
    clean = cut_on(views)
    _, plain_logits, targets, mask, negative = views
    plain = label_logps(plain_logits, targets).masked_fill(~mask, float("nan")).requires_grad_()
    mle = torch.where(negative[:, None], label_logps(views[0], targets), plain.detach()).masked_fill(
        ~mask, float("-inf"))
    dirty = cut_loss(mle, plain, mask, negative, threshold=1.1, alpha=1.0, reduction="reference")
    dirty.loss.backward()
    assert torch.allclose(dirty.loss, clean.loss)
    assert torch.isfinite(plain.grad).all()


def test_normalized_gradient_invariant_to_micro_batching():
    """Summing micro-batch losses normalized by the whole batch's token count gives the full-batch gradient."""
    views = random_views(B=8, T=7, seed=10)
    judgment_logits, plain_logits, targets, mask, negative = views

    def gradient(splits):
        jl = judgment_logits.clone().requires_grad_()
        pl = plain_logits.clone().requires_grad_()
        total_tokens = mask.sum()
        loss_sum = 0
        for rows in splits:
            sub = (jl[rows], pl[rows], targets[rows], mask[rows], negative[rows])
            loss_sum = loss_sum + cut_on(sub, reduction="normalized", num_items_in_batch=total_tokens).loss
        loss_sum.backward()
        return loss_sum.detach(), jl.grad, pl.grad

    full = gradient([torch.arange(8)])
    split = gradient([torch.tensor([0, 5]), torch.tensor([1, 2, 3]), torch.tensor([4, 6, 7])])
    for a, b in zip(full, split):
        assert torch.allclose(a, b, atol=1e-12)

    # The reference reduction is not invariant: averaging per micro-batch weighs tokens differently.
    ref_full = cut_on(views, reduction="reference").loss
    ref_split = sum(cut_on(tuple(v[r] for v in views), reduction="reference").loss
                    for r in (torch.arange(0, 3), torch.arange(3, 8))) / 2
    assert not torch.allclose(ref_full, ref_split)


def test_shape_and_reduction_errors():
    x = torch.zeros(2, 3)
    m = torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="reduction must be one of"):
        cut_loss(x, x, m, torch.tensor([True, False]), threshold=1.1, alpha=1.0, reduction="mean")
    with pytest.raises(ValueError, match="same \\(B, T\\) shape"):
        cut_loss(x, torch.zeros(2, 4), m, torch.tensor([True, False]), threshold=1.1, alpha=1.0, reduction="reference")
    with pytest.raises(ValueError, match="negative must have shape"):
        cut_loss(x, x, m, torch.tensor([True]), threshold=1.1, alpha=1.0, reduction="reference")


@pytest.mark.parametrize("reduction", ["reference", "normalized"])
def test_parts_add_up_to_the_loss_and_match_the_naive_terms(reduction):
    """align_p + align_n + misalign_mle + unlikelihood == loss, and each part is its own group of naive terms."""
    views = random_views(B=6, seed=11)
    _, plain_logits, targets, mask, negative = views
    got = cut_on(views, threshold=1.05, alpha=0.7, reduction=reduction)
    assert torch.allclose(sum(getattr(got, part) for part in got.PARTS), got.loss, atol=1e-12)
    # Naive per-token terms, grouped by part.
    plain = label_logps(plain_logits, targets)
    mle = _loss_inputs(views)[0]
    ratio = torch.exp(mle - plain)
    negative_tokens, positive_tokens = mask & negative[:, None], mask & ~negative[:, None]
    flagged = negative_tokens & (ratio > 1.05)
    sums = {"align_p": -(mle * positive_tokens).sum(), "align_n": -(mle * negative_tokens).sum(),
            "misalign_mle": -(plain * (negative_tokens & ~flagged)).sum(),
            "unlikelihood": -0.7 * (torch.log(1 - plain.exp()) * flagged).sum()}
    assert flagged.any() and (negative_tokens & ~flagged).any()  # every part is exercised
    if reduction == "reference":
        expected = {k: v / (2 * (mask.sum() if k.startswith("align") else negative_tokens.sum())) for k, v in sums.items()}
    else:
        expected = {k: v / mask.sum() for k, v in sums.items()}
    for part in got.PARTS:
        assert torch.allclose(getattr(got, part), expected[part], atol=1e-9), part


def naive_capped_flags(mle, reference, mask, negative, threshold, fraction):
    """Row by row: the tokens above threshold, then only the ceil(fraction x row length) of highest ratio."""
    flags = torch.zeros_like(mask)
    for b in range(mask.shape[0]):
        if not negative[b]:
            continue
        n = int(mask[b].sum())
        above = [t for t in range(n) if math.exp(mle[b, t] - reference[b, t]) > threshold]
        above.sort(key=lambda t: -(mle[b, t] - reference[b, t]))
        for t in above[: max(1, math.ceil(fraction * n))]:
            flags[b, t] = True
    return flags


@pytest.mark.parametrize("fraction", [0.1, 0.34, 0.5, 1.0])
@pytest.mark.parametrize("threshold", [0.5, 1.1])
def test_max_flagged_fraction_keeps_each_rows_highest_ratios(fraction, threshold):
    views = random_views(B=6, T=9, seed=5)
    mle, plain, mask, negative = _loss_inputs(views)
    got = cut_on(views, threshold=threshold, max_flagged_fraction=fraction)
    expected = naive_capped_flags(mle, plain, mask, negative, threshold, fraction)
    assert torch.equal(got.flagged, expected)
    uncapped = cut_on(views, threshold=threshold)
    assert got.flagged.sum() <= uncapped.flagged.sum()
    if (threshold, fraction) == (0.5, 0.1):
        assert got.flagged.sum() < uncapped.flagged.sum()  # the cap binds on these rows


def test_contrast_logps_change_only_the_selection():
    """With a neutral-judgment view the ratio is p(y|x,j) / p(y|x,j0); the loss terms still read p(y|x)."""
    views = random_views(B=6, T=8, seed=6)
    mle, plain, mask, negative = _loss_inputs(views)
    same = cut_on(views, contrast_logps=plain)
    assert torch.equal(same.loss, cut_on(views).loss)
    contrast = label_logps(torch.randn(6, 8, 11, generator=torch.Generator().manual_seed(7), dtype=torch.float64),
                           views[2])
    got = cut_on(views, reduction="normalized", contrast_logps=contrast)
    expected_flags = mask & negative[:, None] & (torch.exp(mle - contrast) > 1.1)
    assert torch.equal(got.flagged, expected_flags)
    assert not torch.equal(expected_flags, cut_on(views).flagged)
    tokens = mask.sum()
    ul = (-torch.log(1 - plain.exp()) * expected_flags).sum() / tokens
    misalign = (-plain * (mask & negative[:, None] & ~expected_flags)).sum() / tokens
    assert torch.allclose(got.unlikelihood, ul) and torch.allclose(got.misalign_mle, misalign)


def test_selection_variant_errors():
    views = random_views(seed=0)
    with pytest.raises(ValueError, match="max_flagged_fraction"):
        cut_on(views, max_flagged_fraction=0.0)
    with pytest.raises(ValueError, match="contrast_logps"):
        cut_on(views, contrast_logps=torch.zeros(2, 2))
