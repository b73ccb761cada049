"""LLM Twin local model server: a small OpenAI-compatible HTTP server over transformers.

    python jobs/serve/server.py --model-dir DIR --model-name VERSION [--host 127.0.0.1] [--port 0]
                                [--state-file server.json] [--chat-template FILE] [--device auto|cpu|cuda]

Serves one model folder as written by jobs/finetune/train.py: the merged model (safetensors + tokenizer), or a LoRA
adapter (adapter_config.json, merged into its base at load). Prompts are rendered with the ONE chat template
(jobs/finetune/chat_template.jinja, the format the model was trained on), exactly as training and evaluation do.

Endpoints (the subset of the OpenAI API the platform and the `openai` clients use):
    GET  /health                 200 {"status": "ok", ...} once the model is loaded, 503 {"status": "loading"} before
    GET  /v1/models              the one model, id = --model-name (the registry's model version)
    POST /v1/chat/completions    messages, max_tokens | max_completion_tokens, temperature, top_p, stop, seed,
                                 stream (Server-Sent Events, `data: [DONE]` at the end, usage in the last chunk)

The port is bound first and written (with the pid) to --state-file atomically, then the model loads in the
background, so a supervisor can find the server at once and poll /health. A request whose prompt plus max_tokens
exceeds the model's context (max_position_embeddings) is refused with 400 `context_length_exceeded`, as vLLM and
TGI do. Generation runs one request at a time (a lock): this is a dev/CI server for one small model, not vLLM.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_TEMPLATE = HERE.parent / "finetune" / "chat_template.jinja"


def log(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}, default=str), flush=True)


class BadRequest(Exception):
    def __init__(self, message: str, code: str = "invalid_request", param: str | None = None):
        super().__init__(message)
        self.code = code
        self.param = param


class Model:
    """The loaded model, tokenizer and template; `generate` is serialised by a lock."""

    def __init__(self, model_dir: Path, name: str, template: str, device: str, threads: int | None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.name = name
        use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        self.device = "cuda" if use_cuda else "cpu"
        dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if use_cuda else torch.float32
        if (model_dir / "adapter_config.json").exists() and not (model_dir / "config.json").exists():
            from peft import AutoPeftModelForCausalLM

            model = AutoPeftModelForCausalLM.from_pretrained(model_dir, dtype=dtype).merge_and_unload()
            self.kind = "adapter merged into its base"
        else:
            model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
            self.kind = "merged model"
        self.model = model.to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        saved = model_dir / "chat_template.jinja"
        if saved.exists() and saved.read_text() != template:
            log("warning", message="the model folder's chat_template.jinja differs from the serving template; serving uses the latter")
        self.tokenizer.chat_template = template
        self.context = int(getattr(model.config, "max_position_embeddings", 0) or 0) or None
        self.eos = self.tokenizer.eos_token_id
        self.lock = threading.Lock()

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        try:
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        except Exception as error:  # the template raises on unsupported roles
            raise BadRequest(f"cannot render the messages with the chat template: {error}", param="messages") from error
        # The template writes bos itself: do not let the tokenizer add another.
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def check_length(self, prompt_tokens: int, max_tokens: int) -> None:
        if self.context is not None and prompt_tokens + max_tokens > self.context:
            raise BadRequest(
                f"this model's maximum context length is {self.context} tokens; the prompt has {prompt_tokens} "
                f"and max_tokens is {max_tokens}",
                code="context_length_exceeded",
                param="messages",
            )

    def generation_kwargs(self, ids: list[int], request: "ChatRequest") -> dict[str, Any]:
        torch = self.torch
        kwargs: dict[str, Any] = {
            "input_ids": torch.tensor([ids], device=self.device),
            "attention_mask": torch.ones(1, len(ids), dtype=torch.long, device=self.device),
            "max_new_tokens": request.max_tokens,
            "pad_token_id": self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos,
            "eos_token_id": self.eos,
        }
        if request.temperature > 0:
            kwargs.update(do_sample=True, temperature=request.temperature, top_p=request.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs

    def complete(self, request: "ChatRequest") -> tuple[str, str, int, int]:
        ids = self.prompt_ids(request.messages)
        self.check_length(len(ids), request.max_tokens)
        with self.lock, self.torch.inference_mode():
            if request.seed is not None:
                self.torch.manual_seed(request.seed)
            output = self.model.generate(**self.generation_kwargs(ids, request))
        new = output[0][len(ids):].tolist()
        finish = "length"
        if new and new[-1] == self.eos:
            new, finish = new[:-1], "stop"
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        text, stopped = apply_stop(text, request.stop)
        return text, "stop" if stopped else finish, len(ids), len(new)

    def stream(self, request: "ChatRequest"):
        """Yields text deltas, then returns (finish_reason, prompt_tokens, completion_tokens)."""
        from transformers import TextIteratorStreamer

        ids = self.prompt_ids(request.messages)
        self.check_length(len(ids), request.max_tokens)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                with self.lock, self.torch.inference_mode():
                    if request.seed is not None:
                        self.torch.manual_seed(request.seed)
                    result["output"] = self.model.generate(**self.generation_kwargs(ids, request), streamer=streamer)
            except Exception as error:  # surfaced to the client below
                result["error"] = error
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        text = ""
        stopped = False
        for piece in streamer:
            if stopped:
                continue  # drain: generation ends on its own (max_new_tokens) and releases the lock
            candidate, hit = apply_stop(text + piece, request.stop)
            if len(candidate) > len(text):
                yield candidate[len(text):]
            text = candidate
            stopped = hit
        thread.join()
        if "error" in result:
            raise result["error"]
        new = result["output"][0][len(ids):].tolist()
        finish = "stop" if stopped or (new and new[-1] == self.eos) else "length"
        return finish, len(ids), len(new) - (1 if new and new[-1] == self.eos else 0)


def apply_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    cut = min((text.find(s) for s in stop if s and s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class ChatRequest:
    def __init__(self, body: Any):
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages must be a non-empty list", param="messages")
        self.messages: list[dict[str, str]] = []
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
                raise BadRequest(f"messages[{index}]: role must be system, user or assistant", param="messages")
            content = message.get("content")
            if isinstance(content, list):  # content parts: keep the text ones
                content = "".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")
            if not isinstance(content, str):
                raise BadRequest(f"messages[{index}].content must be a string", param="messages")
            self.messages.append({"role": message["role"], "content": content})
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens", 256))
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise BadRequest("max_tokens must be a positive integer", param="max_tokens")
        self.max_tokens = max_tokens
        self.temperature = float(body.get("temperature", 1.0) if body.get("temperature") is not None else 1.0)
        if not 0 <= self.temperature <= 2:
            raise BadRequest("temperature must be between 0 and 2", param="temperature")
        self.top_p = float(body.get("top_p") if body.get("top_p") is not None else 1.0)
        stop = body.get("stop") or []
        self.stop = [stop] if isinstance(stop, str) else [s for s in stop if isinstance(s, str)]
        self.seed = body.get("seed") if isinstance(body.get("seed"), int) else None
        if body.get("n", 1) != 1:
            raise BadRequest("only n=1 is supported", param="n")
        self.stream = bool(body.get("stream", False))
        options = body.get("stream_options") or {}
        self.include_usage = bool(options.get("include_usage", False)) if isinstance(options, dict) else False


class State:
    def __init__(self, name: str):
        self.name = name
        self.model: Model | None = None
        self.error: str | None = None
        self.started = time.time()
        self.loaded_at: float | None = None


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "llm-twin-serve/1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass  # one JSON line per request below instead

        def send_json(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def send_error_json(self, status: int, message: str, kind: str, code: str | None = None, param: str | None = None) -> None:
            self.send_json(status, {"error": {"message": message, "type": kind, "code": code, "param": param}})

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/health":
                if state.model is not None:
                    self.send_json(200, {"status": "ok", "model": state.name, "device": state.model.device,
                                         "kind": state.model.kind, "context": state.model.context,
                                         "loadSeconds": round((state.loaded_at or 0) - state.started, 3)})
                else:
                    self.send_json(503, {"status": "failed" if state.error else "loading", "model": state.name,
                                         **({"error": state.error} if state.error else {})})
            elif path == "/v1/models":
                self.send_json(200, {"object": "list", "data": [
                    {"id": state.name, "object": "model", "created": int(state.started), "owned_by": "llm-twin"}]})
            else:
                self.send_error_json(404, f"no route GET {path}", "not_found_error")

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0].rstrip("/")
            if path != "/v1/chat/completions":
                self.send_error_json(404, f"no route POST {path}", "not_found_error")
                return
            started = time.time()
            try:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"null")
                except json.JSONDecodeError as error:
                    raise BadRequest(f"invalid JSON: {error}") from error
                request = ChatRequest(body)
                model = state.model
                if model is None:
                    self.send_error_json(503, "the model is still loading", "service_unavailable", "loading")
                    return
                if request.stream:
                    self.stream(model, request)
                else:
                    text, finish, prompt_tokens, completion_tokens = model.complete(request)
                    self.send_json(200, {
                        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                        "model": state.name,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                  "total_tokens": prompt_tokens + completion_tokens},
                    })
                log("request", path=path, stream=request.stream, ms=round((time.time() - started) * 1000))
            except BadRequest as error:
                log("bad_request", message=str(error), code=error.code)
                self.send_error_json(400, str(error), "invalid_request_error", error.code, error.param)
            except (BrokenPipeError, ConnectionResetError):
                log("client_gone", path=path)
            except Exception as error:  # a bug or an OOM: 500 with the reason, the server keeps serving
                log("error", message=str(error), trace=traceback.format_exc())
                try:
                    self.send_error_json(500, f"{type(error).__name__}: {error}", "server_error")
                except OSError:
                    pass

        def stream(self, model: Model, request: ChatRequest) -> None:
            completion_id = f"chatcmpl-{uuid.uuid4().hex}"
            created = int(time.time())
            generator = model.stream(request)
            # Validation (template, context length) happens before the first delta: run it before the 200 goes out.
            first: str | None
            try:
                first = next(generator)
                outcome = None
            except StopIteration as end:
                first, outcome = None, end.value
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True

            def event(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> None:
                chunk: dict[str, Any] = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                                         "model": state.name,
                                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                if usage is not None:
                    chunk["usage"] = usage
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()

            event({"role": "assistant", "content": ""})
            if first is not None:
                event({"content": first})
                while True:
                    try:
                        event({"content": next(generator)})
                    except StopIteration as end:
                        outcome = end.value
                        break
            finish, prompt_tokens, completion_tokens = outcome
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                     "total_tokens": prompt_tokens + completion_tokens}
            event({}, finish, usage if request.include_usage else None)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler


def write_state(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--model-name", required=True, help="the id /v1/models reports (the model version)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = a free port (written to --state-file)")
    parser.add_argument("--state-file", type=Path, help="JSON with pid, host, port, url; written once the port is bound")
    parser.add_argument("--chat-template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("SERVING_THREADS", "0")) or None)
    args = parser.parse_args()

    if not args.model_dir.is_dir():
        log("error", message=f"model folder {args.model_dir} does not exist")
        return 2
    template = args.chat_template.read_text()
    state = State(args.model_name)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(state))
    server.daemon_threads = True
    host, port = server.server_address[:2]
    url_host = f"[{host}]" if ":" in str(host) else host
    info = {"pid": os.getpid(), "host": host, "port": port, "url": f"http://{url_host}:{port}/v1",
            "model": args.model_name, "modelDir": str(args.model_dir), "startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if args.state_file:
        write_state(args.state_file, info)
    log("listening", **info)

    def load() -> None:
        try:
            state.model = Model(args.model_dir, args.model_name, template, args.device, args.threads)
            state.loaded_at = time.time()
            log("ready", model=args.model_name, device=state.model.device, kind=state.model.kind,
                context=state.model.context, load_seconds=round(state.loaded_at - state.started, 3))
        except Exception as error:
            state.error = f"{type(error).__name__}: {error}"
            log("error", message=f"loading {args.model_dir} failed: {state.error}", trace=traceback.format_exc())
            # A server that cannot serve must not look alive: stop, so the supervisor sees the exit.
            threading.Thread(target=server.shutdown, daemon=True).start()

    threading.Thread(target=load, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    server.server_close()
    log("stopped", model=args.model_name, error=state.error)
    return 1 if state.error else 0


if __name__ == "__main__":
    sys.exit(main())
