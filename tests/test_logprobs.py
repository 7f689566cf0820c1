"""Chunked label log-probabilities: values and gradients against a naive full log-softmax, peaked logits included."""

import pytest
import torch

from cutalign.logprobs import token_logprobs


def naive(hidden, weight, bias, targets):
    logits = hidden @ weight.T + (bias if bias is not None else 0)
    return torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), -1)[
        torch.arange(len(targets)), targets]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1.0, 60.0])  # 60: logits spread over hundreds, softmax entries far below 1e-38
@pytest.mark.parametrize("with_bias", [False, True])
def test_values_and_gradients_match_full_softmax(dtype, scale, with_bias):
    torch.manual_seed(0)
    k, d, v = 37, 16, 300
    hidden = (torch.randn(k, d, dtype=dtype) * scale).requires_grad_()
    weight = torch.randn(v, d, dtype=dtype).requires_grad_()
    bias = torch.randn(v, dtype=dtype).requires_grad_() if with_bias else None
    targets = torch.randint(0, v, (k,))
    # Upstream gradients of very different sizes, some exactly zero (unused tokens), some tiny.
    upstream = torch.randn(k, dtype=dtype) * torch.logspace(-12, 0, k, dtype=dtype)
    upstream[::5] = 0

    if scale > 1:  # the case the backward's floor exists for: softmax entries below the smallest normal float32
        probs = torch.softmax((hidden @ weight.T).detach().float(), -1)
        assert ((probs > 0) & (probs < torch.finfo(torch.float32).tiny)).any() or (probs == 0).any()
    inputs = [hidden, weight] + ([bias] if with_bias else [])
    fast = token_logprobs(hidden, weight, bias, targets, chunk_size=8)
    fast_grads = torch.autograd.grad((fast * upstream).sum(), inputs)
    slow = naive(hidden, weight, bias, targets)
    slow_grads = torch.autograd.grad((slow * upstream).sum(), inputs)

    assert torch.allclose(fast, slow, rtol=1e-5, atol=1e-4 if dtype == torch.float32 else 1e-10)
    for got, expected in zip(fast_grads, slow_grads):
        tolerance = 1e-4 if dtype == torch.float32 else 1e-10
        assert torch.allclose(got, expected, rtol=1e-4, atol=tolerance * expected.abs().max().item())

