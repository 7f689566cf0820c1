"""A stand-in OpenAI-compatible generation server: one model (transformers + peft), LoRA adapters loaded at run time.

It answers the routes of vLLM's OpenAI server that the online loop uses, so ``generation.backend: openai`` (and an
endpoint judge) can be tried on a CPU without vLLM::

    python examples/openai_generation_server.py --model default --port 8011     # the embedded SmolLM2-135M

    GET  /v1/models                 the base model and the loaded adapters (OpenAI's list format)
    POST /v1/completions            {"model", "prompt", "max_tokens", "temperature", "top_p", "seed",
                                     "add_special_tokens"}: the prompt text as given, tokenized as vLLM does
    POST /v1/chat/completions       {"model", "messages", ...}: the model's chat template applied here
    POST /v1/load_lora_adapter      {"lora_name", "lora_path"}: load a saved PEFT adapter under that name
    POST /v1/unload_lora_adapter    {"lora_name"}
    GET  /stats                     requests per route, adapter loads, the adapters loaded

``model`` is the served name of the base model (``--served-model-name``, default the ``--model`` value) or the name
of a loaded adapter; an unknown name is a 404 and loading a name twice a 400, as with vLLM. Requests are answered one
at a time (one model, one lock), each seeded with its own ``seed``, so an answer does not depend on what else was
asked: greedy answers are deterministic, and so are sampled ones for a given seed.

Bounded: it listens on 127.0.0.1 only, reads request bodies of at most 1 MiB, generates at most 1,024 tokens per
request and drops a connection idle for 60 s. Not a production server: use vLLM (docs/online.md).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

MAX_BODY_BYTES = 1 << 20
MAX_TOKENS = 1024


class ClientError(Exception):
    """A request the server refuses, with its HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ModelServer:
    """The model, its adapters and the counts the ``/stats`` route reports; safe to call from many threads."""

    def __init__(self, model, tokenizer, name: str):
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.adapters: dict[str, str] = {}  # name -> path
        self.lock = threading.Lock()
        self.stats = {"requests": {"completions": 0, "chat": 0, "models": 0, "load_lora_adapter": 0},
                      "adapter_loads": 0}

    def count(self, route: str) -> None:
        with self.lock:
            self.stats["requests"][route] = self.stats["requests"].get(route, 0) + 1

    def served(self) -> list[str]:
        return [self.name, *self.adapters]

    def load_adapter(self, name: str, path: str) -> None:
        from peft import PeftModel

        with self.lock:
            if not name or not path:
                raise ClientError(400, "lora_name and lora_path are required")
            if name in self.adapters or name == self.name:
                raise ClientError(400, f"The lora adapter '{name}' has already been loaded.")
            try:
                if isinstance(self.model, PeftModel):
                    self.model.load_adapter(path, adapter_name=name)
                else:
                    self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name)
            except (OSError, ValueError) as error:
                raise ClientError(400, f"cannot load the adapter {path!r}: {error}") from None
            self.model.eval()
            self.adapters[name] = path
            self.stats["adapter_loads"] += 1

    def unload_adapter(self, name: str) -> None:
        with self.lock:
            if name not in self.adapters:
                raise ClientError(404, f"The lora adapter '{name}' cannot be found.")
            self.model.delete_adapter(name)
            del self.adapters[name]

    @torch.no_grad()
    def generate(self, text: str, *, model: str, add_special_tokens: bool, max_tokens: int, temperature: float,
                 top_p: float, seed: int) -> dict:
        """One answer to ``text``: {"text", "finish_reason", "prompt_tokens", "completion_tokens"}."""
        if model not in self.served():
            raise ClientError(404, f"The model `{model}` does not exist.")
        if not 1 <= max_tokens <= MAX_TOKENS:
            raise ClientError(400, f"max_tokens must be between 1 and {MAX_TOKENS}, got {max_tokens}")
        ids = self.tokenizer(text, add_special_tokens=add_special_tokens, return_tensors="pt")["input_ids"]
        sampling = {"do_sample": False}
        if temperature > 0:
            sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p}
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with self.lock:
            torch.manual_seed(seed)
            if model == self.name and self.adapters:
                with self.model.disable_adapter():
                    output = self._generate(ids, max_tokens, pad, sampling)
            else:
                if self.adapters:
                    self.model.set_adapter(model)
                output = self._generate(ids, max_tokens, pad, sampling)
        new = output[0, ids.shape[1]:]
        finished = bool(len(new)) and new[-1].item() == self.tokenizer.eos_token_id
        return {"text": self.tokenizer.decode(new, skip_special_tokens=True), "prompt_tokens": ids.shape[1],
                "completion_tokens": len(new), "finish_reason": "stop" if finished else "length"}

    def _generate(self, ids, max_tokens: int, pad: int, sampling: dict):
        return self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                                   pad_token_id=pad, eos_token_id=self.tokenizer.eos_token_id, top_k=None, **sampling)


def _number(body: dict, key: str, default, kind):
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise ClientError(400, f"{key} must be a number, got {value!r}")
    return kind(value)


def make_handler(server: ModelServer) -> type[BaseHTTPRequestHandler]:
    """The request handler class of an HTTP server in front of ``server``."""

    class Handler(BaseHTTPRequestHandler):
        timeout = 60  # seconds a connection may sit idle

        def log_message(self, *args):
            pass

        def reply(self, status: int, body) -> None:
            data = (json.dumps(body) if not isinstance(body, str) else body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if not isinstance(body, str) else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def fail(self, status: int, message: str) -> None:
            self.reply(status, {"error": {"message": message, "code": status}})

        def do_GET(self):
            if self.path == "/v1/models":
                server.count("models")
                now = int(time.time())
                return self.reply(200, {"object": "list", "data": [
                    {"id": name, "object": "model", "created": now, "owned_by": "cutalign-example",
                     **({"parent": server.name} if name != server.name else {})} for name in server.served()]})
            if self.path == "/stats":
                with server.lock:
                    return self.reply(200, {**server.stats, "adapters": list(server.adapters)})
            return self.fail(404, f"no route GET {self.path}")

        def do_POST(self):
            try:
                length = int(self.headers.get("Content-Length", "0"))
                if not 0 <= length <= MAX_BODY_BYTES:
                    raise ClientError(413, f"request bodies are limited to {MAX_BODY_BYTES} bytes")
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise ClientError(400, "the request body must be a JSON object")
                return self.route(body)
            except ClientError as error:
                return self.fail(error.status, str(error))
            except (ValueError, KeyError, TypeError) as error:
                return self.fail(400, f"bad request: {error}")
            except Exception as error:  # a failure inside the model: the client may retry
                return self.fail(500, f"{type(error).__name__}: {error}")

        def route(self, body: dict):
            if self.path == "/v1/load_lora_adapter":
                server.count("load_lora_adapter")
                server.load_adapter(body.get("lora_name"), body.get("lora_path"))
                return self.reply(200, f"Success: LoRA adapter '{body['lora_name']}' added successfully.")
            if self.path == "/v1/unload_lora_adapter":
                server.unload_adapter(body.get("lora_name"))
                return self.reply(200, f"Success: LoRA adapter '{body['lora_name']}' removed successfully.")
            if self.path == "/v1/completions":
                server.count("completions")
                prompt = body["prompt"]
                if not isinstance(prompt, str):
                    raise ClientError(400, "this server takes one prompt string per request")
                add_special = body.get("add_special_tokens", True)
            elif self.path == "/v1/chat/completions":
                server.count("chat")
                prompt = server.tokenizer.apply_chat_template(body["messages"], add_generation_prompt=True,
                                                              tokenize=False)
                add_special = False
            else:
                raise ClientError(404, f"no route POST {self.path}")
            answer = server.generate(prompt, model=str(body.get("model")), add_special_tokens=bool(add_special),
                                     max_tokens=_number(body, "max_tokens", 16, int),
                                     temperature=_number(body, "temperature", 1.0, float),
                                     top_p=_number(body, "top_p", 1.0, float), seed=_number(body, "seed", 0, int))
            choice = {"index": 0, "finish_reason": answer["finish_reason"]}
            if self.path == "/v1/completions":
                choice["text"] = answer["text"]
                kind = "text_completion"
            else:
                choice["message"] = {"role": "assistant", "content": answer["text"]}
                kind = "chat.completion"
            usage = {"prompt_tokens": answer["prompt_tokens"], "completion_tokens": answer["completion_tokens"],
                     "total_tokens": answer["prompt_tokens"] + answer["completion_tokens"]}
            return self.reply(200, {"id": f"cmpl-{time.time_ns()}", "object": kind, "created": int(time.time()),
                                    "model": body.get("model"), "choices": [choice], "usage": usage})

    return Handler


def serve(model_server: ModelServer, port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1:``port`` (0: a free one) in front of ``model_server``, not yet serving."""
    httpd = ThreadingHTTPServer(("127.0.0.1", port), make_handler(model_server))
    httpd.daemon_threads = True
    return httpd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="a model directory or 'default' (the embedded model)")
    parser.add_argument("--served-model-name", default=None, help="the base model's name (default: --model)")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    from cutalign.models import load_model, load_tokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model)
    model.eval()
    httpd = serve(ModelServer(model, load_tokenizer(args.model), args.served_model_name or args.model), args.port)
    print(f"generation server for {args.model!r} on http://127.0.0.1:{httpd.server_address[1]}/v1", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
