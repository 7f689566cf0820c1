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



def test_a_deep_copy_of_a_patched_model_runs_its_own_weights():
    """Copying a patched model (as the benchmarks do, one copy per method) must not leave the copy's forward calling
    the original's modules: LoRA on the copy would then change nothing and train nothing."""
    import copy

    from conftest import make_model
    from peft import LoraConfig, get_peft_model

    from cutalign.logprobs import add_token_logprobs_forward

    original = add_token_logprobs_forward(make_model("llama"))
    twin = copy.deepcopy(original)
    with torch.no_grad():
        twin.lm_head.weight.mul_(3)
    input_ids = torch.tensor([[1, 5, 7, 9]])
    positions, targets = torch.tensor([[0, 0], [0, 1], [0, 2]]), input_ids[0, 1:]
    assert not torch.allclose(original(input_ids=input_ids).logits, twin(input_ids=input_ids).logits)
    assert not torch.allclose(original(input_ids=input_ids, score_positions=positions, score_targets=targets).token_logps,
                              twin(input_ids=input_ids, score_positions=positions, score_targets=targets).token_logps)
    peft_twin = get_peft_model(twin, LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    peft_twin(input_ids=input_ids, score_positions=positions, score_targets=targets).token_logps.sum().backward()
    assert all(p.grad is not None for n, p in peft_twin.named_parameters() if "lora_B" in n)
    assert all(p.grad is None for p in original.parameters())
