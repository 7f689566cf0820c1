"""A stand-in OpenAI-compatible judge server: answers chat-completions requests with the built-in rule judge.

Use it to try the endpoint judge end to end without a real LLM server::

    python examples/rule_judge_endpoint.py --port 8000 &
    CUTALIGN_JUDGE_API_KEY=local cutalign online --config configs/online-endpoint.yaml

It reads the instruction and response out of the prompt the endpoint judge sends (``JUDGE_PROMPT`` in
:mod:`cutalign.judges`) and answers "No issues." or the rule judge's critique, in the chat-completions
response format. Standard library only; a real deployment points ``base_url`` at vLLM, TGI or a hosted API.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cutalign.judges import JUDGE_PROMPT, NO_ISSUES
from cutalign.tasks import rule_judge

_BEFORE_INSTRUCTION, _rest = JUDGE_PROMPT.split("{instruction}")
_BETWEEN, _AFTER_RESPONSE = _rest.split("{response}")


def split_prompt(content: str) -> tuple[str, str]:
    """(instruction, response) out of a judge prompt; ValueError when it is not one."""
    if not (content.startswith(_BEFORE_INSTRUCTION) and content.endswith(_AFTER_RESPONSE) and _BETWEEN in content):
        raise ValueError("not a cutalign judge prompt")
    middle = content[len(_BEFORE_INSTRUCTION):len(content) - len(_AFTER_RESPONSE)]
    instruction, response = middle.split(_BETWEEN, 1)
    return instruction, response


class RuleJudgeHandler(BaseHTTPRequestHandler):
    """POST /v1/chat/completions (any path ending in /chat/completions) -> the rule judge's answer."""

    def log_message(self, *args):
        pass

    def reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if not self.path.endswith("/chat/completions"):
            return self.reply(404, {"error": f"no route {self.path}"})
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            instruction, response = split_prompt(body["messages"][-1]["content"])
        except (ValueError, KeyError, IndexError, TypeError) as error:
            return self.reply(400, {"error": str(error)})
        answer = rule_judge(instruction, response) or NO_ISSUES
        return self.reply(200, {"object": "chat.completion", "model": body.get("model"),
                                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                                             "finish_reason": "stop"}]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), RuleJudgeHandler)
    print(f"rule judge endpoint on http://{args.host}:{server.server_address[1]}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
