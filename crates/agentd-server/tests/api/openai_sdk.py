"""Drives agentd's OpenAI-compatible API with the official `openai` SDK.

Usage: python3 openai_sdk.py BASE_URL API_KEY

Each check asserts what the SDK returns; the last line printed is a JSON
object of the run ids the calls created, for the Rust test to look up.
"""

import json
import sys

import openai

base, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
ids = {}

# Models: one per agent.
models = client.models.list()
names = sorted(m.id for m in models.data)
assert {"demo", "asker", "chat"} <= set(names), names
assert all(m.object == "model" and m.owned_by == "agentd" for m in models.data)

# Plain call: the run's output; the id is the run id, also in the header.
raw = client.chat.completions.with_raw_response.create(
    model="demo", messages=[{"role": "user", "content": "hello"}], user="user-7"
)
done = raw.parse()
assert raw.headers["x-agentd-run-id"] == done.id, (raw.headers, done.id)
assert done.object == "chat.completion", done
assert done.model == "demo", done
assert done.choices[0].message.role == "assistant", done
assert done.choices[0].message.content == "done: hello", done
assert done.choices[0].finish_reason == "stop", done
assert done.usage.prompt_tokens > 0 and done.usage.completion_tokens > 0, done.usage
assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
ids["plain"] = done.id

# Streaming, with the usage chunk last.
chunks = list(
    client.chat.completions.create(
        model="demo",
        messages=[{"role": "user", "content": "streamed"}],
        stream=True,
        stream_options={"include_usage": True},
    )
)
assert chunks[0].object == "chat.completion.chunk", chunks[0]
assert chunks[0].choices[0].delta.role == "assistant", chunks[0]
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert text == "done: streamed", text
finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
assert finishes[-1] == "stop", finishes
assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0, chunks[-1]
assert len({c.id for c in chunks}) == 1, "every chunk carries the run id"
ids["stream"] = chunks[0].id

# Multi-turn: the earlier messages reach the model before the input.
turn = client.chat.completions.create(
    model="chat",
    messages=[
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": "hi Ada"},
        {"role": "user", "content": [{"type": "text", "text": "who am I?"}]},
    ],
)
assert turn.choices[0].message.content == (
    "[system: be brief | user: my name is Ada | assistant: hi Ada] who am I?"
), turn.choices[0].message.content
ids["multi_turn"] = turn.id

# A pausing agent: its question is the answer, the extension names the run.
paused = client.chat.completions.create(
    model="asker", messages=[{"role": "user", "content": "go"}]
)
assert paused.choices[0].message.content == "ok?", paused
assert paused.choices[0].finish_reason == "stop", paused
ext = paused.model_extra["agentd"]
assert ext["run_id"] == paused.id and ext["status"] == "paused", ext
assert ext["resume"] == f"/v1/runs/{paused.id}/resume", ext
ids["paused"] = paused.id

# The context survives a pause: the question shows it, and so does the
# answer after the resume (checked by the Rust test).
asked = client.chat.completions.create(
    model="interviewer",
    messages=[
        {"role": "developer", "content": "ctx"},
        {"role": "user", "content": "q"},
    ],
)
assert asked.choices[0].message.content == "system: ctx?", asked
ids["interview"] = asked.id

# A run that dies: 500 with its id, and the SDK (default retries) is told
# not to retry, which would start another run.
retrying = openai.OpenAI(base_url=base + "/v1", api_key=key)
try:
    retrying.chat.completions.create(
        model="broken", messages=[{"role": "user", "content": "x"}]
    )
    raise AssertionError("a dead run answered 200")
except openai.InternalServerError as e:
    assert e.status_code == 500 and e.type == "server_error", e.body
    assert e.response.headers["x-should-retry"] == "false", e.response.headers
    ids["broken"] = e.response.headers["x-agentd-run-id"]

# Streamed, a dying run ends the stream with an error the SDK raises.
try:
    for _ in client.chat.completions.create(
        model="broken", messages=[{"role": "user", "content": "x"}], stream=True
    ):
        pass
    raise AssertionError("a dead run streamed to the end")
except openai.APIError as e:
    assert "is dead" in e.message, e.message

# An unknown model.
try:
    client.chat.completions.create(
        model="nope", messages=[{"role": "user", "content": "x"}]
    )
    raise AssertionError("an unknown model was accepted")
except openai.NotFoundError as e:
    assert e.status_code == 404 and e.code == "model_not_found", (e.status_code, e.body)
    assert e.type == "invalid_request_error", e.body

# A malformed conversation.
try:
    client.chat.completions.create(
        model="demo", messages=[{"role": "assistant", "content": "x"}]
    )
    raise AssertionError("a conversation ending with an assistant message was accepted")
except openai.BadRequestError as e:
    assert e.status_code == 400 and e.param == "messages", e.body

# A bad key, on both routes.
bad = openai.OpenAI(base_url=base + "/v1", api_key="agd_bogus_key", max_retries=0)
for call in (
    lambda: bad.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "x"}]
    ),
    lambda: bad.models.list(),
):
    try:
        call()
        raise AssertionError("a bad key was accepted")
    except openai.AuthenticationError as e:
        assert e.status_code == 401, e.status_code
        assert e.code == "invalid_api_key" and e.type == "authentication_error", e.body

print(json.dumps(ids))
